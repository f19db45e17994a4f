import pg from 'pg';

/** Direct SQL for tests to look at (and tamper with) stored state: `?` placeholders, rows back. */
export interface TestSql {
  execute<T = Record<string, unknown>[]>(sql: string, params?: unknown[]): Promise<T>;
  close(): Promise<void>;
}

export function testSql(databaseUrl: string): TestSql {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: 'order-up test' });
  pool.on('error', () => undefined);
  return {
    async execute<T>(sql: string, params: unknown[] = []): Promise<T> {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${(n += 1)}`);
      return (await pool.query(text, params)).rows as T;
    },
    close: () => pool.end(),
  };
}

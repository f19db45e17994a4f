import { createHash } from 'node:crypto';
import pg from 'pg';

/** What a repository runs its statements on: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<T>(sql: string, values?: unknown[]): Promise<T[]>;
}

// Statement text -> prepared statement name. The texts are fixed strings of the repositories (a few
// variants each), so this stays a handful of entries.
const statementNames = new Map<string, string>();

function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `order_up_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/**
 * Every statement is prepared once per connection, so PostgreSQL parses and plans it once, not on
 * every request; values always travel as bind parameters, so no card token or email ever becomes
 * part of a statement's text (or of an error quoting it).
 */
async function run<T>(client: pg.Pool | pg.PoolClient, sql: string, values: unknown[]): Promise<T[]> {
  const result = await client.query<T & pg.QueryResultRow>(prepared(sql, values));
  return result.rows;
}

export interface DatabaseOptions {
  /** Connections at most (default 10). */
  max?: number;
  application?: string;
}

/**
 * The data-access layer's own connection pool (node-postgres). MikroORM keeps the schema and the
 * migrations; the statements of the request path run here, without an ORM layer in between.
 */
export class Database implements Queryable {
  private readonly pool: pg.Pool;

  constructor(url: string, opts: DatabaseOptions = {}) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      idleTimeoutMillis: 30_000,
      application_name: opts.application ?? 'order-up',
    });
    // An idle connection that breaks (the database restarted) is dropped by the pool; without a
    // listener node would treat the error as uncaught. The next query opens a new connection.
    this.pool.on('error', () => undefined);
  }

  query<T>(sql: string, values: unknown[] = []): Promise<T[]> {
    return run<T>(this.pool, sql, values);
  }

  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: unknown;
    try {
      await client.query('begin');
      const result = await work({ query: <R>(sql: string, values: unknown[] = []) => run<R>(client, sql, values) });
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch((e: unknown) => (broken = e));
      throw err;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** PostgreSQL's unique_violation on the named constraint. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string } | null;
  return e?.code === '23505' && e.constraint === constraint;
}

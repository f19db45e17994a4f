import pg from 'pg';
import { MIGRATION_NAMES } from './migrations/names.js';

/**
 * The migrations not yet applied to the database, asked with one query: a process that finds none
 * pending never loads MikroORM (which alone would add ~45 MB to every serving process).
 */
export async function pendingMigrations(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'order-up migrate' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('select name from mikro_orm_migrations');
    // MikroORM may record a name with its file's extension.
    const applied = new Set(rows.map((r) => r.name.replace(/\.[jt]s$/, '')));
    return MIGRATION_NAMES.filter((name) => !applied.has(name));
  } catch (err) {
    // undefined_table: a new database, where every migration is pending.
    if ((err as { code?: string }).code === '42P01') return [...MIGRATION_NAMES];
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Applies pending migrations (MikroORM's migrator, loaded only for this); returns the names applied. */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  if ((await pendingMigrations(databaseUrl)).length === 0) return [];
  const { migrate, openOrm } = await import('./orm.js');
  const orm = await openOrm(databaseUrl);
  try {
    return await migrate(orm, databaseUrl);
  } finally {
    await orm.close(true);
  }
}

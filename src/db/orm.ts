import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import pg from 'pg';
import { MIGRATION_LOCK } from '../advisory-locks.js';
import { entities } from './entities.js';
import { migrationsList } from './migrations/index.js';

export type Orm = MikroORM;

// knex reports pool trouble with console.log, which would land on stdout (the CLI's --json output).
const toStderr = (level: string) => (message: unknown) => {
  process.stderr.write(`${JSON.stringify({ level, msg: 'database client', detail: String(message) })}\n`);
};

/** The ORM options shared by the app, the CLI and mikro-orm.config.ts. */
export function ormOptions(clientUrl: string) {
  return {
    driverOptions: { log: { warn: toStderr('warn'), error: toStderr('error'), deprecate: toStderr('warn'), debug: () => undefined } },
    clientUrl,
    entities,
    extensions: [Migrator],
    migrations: { migrationsList, tableName: 'mikro_orm_migrations', transactional: true, allOrNothing: true, silent: true },
    // Request code must fork its own EntityManager; the global one is never used by accident.
    allowGlobalContext: false,
    discovery: { warnWhenNoEntities: false },
    // The request path runs on the data-access layer's own pool (database.ts); this one serves
    // migrations and the odd look at the schema.
    pool: { min: 0, max: 4 },
    debug: false,
  };
}

export async function openOrm(databaseUrl: string): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl));
}

/**
 * Applies pending migrations. Two processes starting at once take turns on a session advisory
 * lock held on a connection of its own, so the second finds nothing left to do.
 */
export async function migrate(orm: Orm, databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'order-up migrate' });
  // A dropped connection fails the query below (and so the migration) instead of crashing the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await orm.migrator.up();
    return applied.map((m) => m.name);
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

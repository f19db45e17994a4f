import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import pg from 'pg';
import { entities } from './entities.js';
import { migrationsList } from './migrations/index.js';

export type Orm = MikroORM;

/** The ORM options shared by the app, the CLI and mikro-orm.config.ts. */
export function ormOptions(clientUrl: string) {
  return {
    clientUrl,
    entities,
    extensions: [Migrator],
    migrations: { migrationsList, tableName: 'mikro_orm_migrations', transactional: true, allOrNothing: true, silent: true },
    // Request code must fork its own EntityManager; the global one is never used by accident.
    allowGlobalContext: false,
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: 20 },
    debug: false,
  };
}

export async function openOrm(databaseUrl: string): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl));
}

// Arbitrary but fixed: the advisory lock key that serialises migrations across processes.
const MIGRATION_LOCK = 710_001;

/**
 * Applies pending migrations. Two processes starting at once take turns on a session advisory
 * lock held on a connection of its own, so the second finds nothing left to do.
 */
export async function migrate(orm: Orm, databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

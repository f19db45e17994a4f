import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { MIGRATION_LOCK } from '../src/advisory-locks.js';
import { migrate, openOrm, type Orm } from '../src/db/orm.js';
import { migrationsList } from '../src/db/migrations/index.js';
import { applyMigrations, pendingMigrations } from '../src/db/schema.js';
import { dropDatabaseUrl, freshDatabaseUrl } from './support/test-db.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const MIGRATIONS = migrationsList.map((m) => m.name);

const made: string[] = [];
async function freshDb(): Promise<string> {
  const url = await freshDatabaseUrl('migrate');
  made.push(url);
  return url;
}
afterAll(async () => {
  for (const url of made) await dropDatabaseUrl(url).catch(() => undefined);
});

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** What a migrated database must hold, exactly once. */
async function expectSchemaOnce(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const applied = await c.query<{ name: string }>('select name from mikro_orm_migrations order by id');
    expect(applied.rows.map((r) => r.name.replace(/\.[jt]s$/, ''))).toEqual(MIGRATIONS);
    const tables = await c.query<{ tablename: string }>(`select tablename from pg_tables where schemaname = 'public' order by tablename`);
    expect(tables.rows.map((r) => r.tablename)).toEqual([
      'idempotency_keys',
      'line_items',
      'mikro_orm_migrations',
      'order_events',
      'orders',
      'payments',
    ]);
    const seqs = await c.query<{ n: string }>(
      `select count(*) as n from pg_sequences where schemaname = 'public' and sequencename in ('orders_seq_seq', 'order_up_process_key')`,
    );
    expect(Number(seqs.rows[0].n)).toBe(2);
    // And it works: an order can be stored.
    await c.query(
      `insert into orders (id, customer_email, status, total_cents, created_at, updated_at) values ('m1', 'a@b', 'pending', 0, now(), now())`,
    );
    await c.query(`delete from orders where id = 'm1'`);
  });
}

describe('pending migrations', () => {
  test('when the database is new, then every migration is pending; once applied, none is and nothing is applied again', async () => {
    const url = await freshDb();
    expect(await pendingMigrations(url)).toEqual(MIGRATIONS);
    expect(await applyMigrations(url)).toEqual(MIGRATIONS);
    await expectSchemaOnce(url);
    expect(await pendingMigrations(url)).toEqual([]);
    expect(await applyMigrations(url)).toEqual([]);
  });
});

describe('the order timeline of orders that existed before it', () => {
  test('when the timeline migration runs on a database with orders and payments, then each order gets its history as events, oldest first', async () => {
    const url = await freshDb();
    const orm = await openOrm(url);
    try {
      await orm.migrator.up({ to: 'Migration20261129000000_idempotency_keys' });
      await withClient(url, async (c) => {
        await c.query(`insert into orders (id, customer_email, status, total_cents, created_at, updated_at, charged_at, cancelled_at, cancel_reason)
          values ('old-1', 'a@b', 'cancelled', 500, '2026-11-01 10:00Z', '2026-11-01 12:00Z', '2026-11-01 11:00Z', '2026-11-01 12:00Z', 'too late'),
                 ('old-2', 'c@d', 'pending', 100, '2026-11-01 13:00Z', '2026-11-01 13:00Z', null, null, null)`);
        await c.query(
          `insert into line_items (order_id, position, description, price_cents, quantity) values ('old-1', 0, 'Tea', 500, 1), ('old-2', 0, 'Mug', 100, 1)`,
        );
        await c.query(`insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at, outcome)
          values (gen_random_uuid(), 'old-1', 'charge', 500, 'tok_old', 'succeeded', 1, '2026-11-01 11:00Z', '2026-11-01 11:00Z', 'charge service answered 201'),
                 (gen_random_uuid(), 'old-1', 'refund', -500, 'tok_old', 'succeeded', 1, '2026-11-01 11:59Z', '2026-11-01 12:00Z', 'charge service answered 201')`);
      });
      await orm.migrator.up();
      await withClient(url, async (c) => {
        const { rows } = await c.query<{ order_id: string; type: string; actor_kind: string; data: Record<string, unknown> }>(
          'select order_id, type, actor_kind, data from order_events order by order_id, seq',
        );
        expect(rows.map((r) => `${r.order_id} ${r.type}`)).toEqual([
          'old-1 order.created',
          'old-1 charge.started',
          'old-1 charge.succeeded',
          'old-1 refund.started',
          'old-1 refund.succeeded',
          'old-1 order.cancelled',
          'old-2 order.created',
        ]);
        expect(rows.every((r) => r.actor_kind === 'system' && r.data.backfilled === true)).toBe(true);
        expect(rows[0].data).toMatchObject({ totalCents: 500, lineItems: 1 });
        expect(rows[5].data).toMatchObject({ reason: 'too late' });
        expect(JSON.stringify(rows)).not.toContain('tok_old');
      });
    } finally {
      await orm.close(true);
    }
  });
});

describe('when migrations are applied in-process', () => {
  const orms: Orm[] = [];
  afterAll(async () => {
    for (const orm of orms) await orm.close(true);
  });
  async function open(url: string): Promise<Orm> {
    const orm = await openOrm(url);
    orms.push(orm);
    return orm;
  }

  test('when two migrators start at once on a fresh database, then both succeed and the schema is there once', async () => {
    const url = await freshDb();
    const [a, b] = await Promise.all([open(url), open(url)]);
    const results = await Promise.all([migrate(a, url), migrate(b, url)]);
    // One applied everything, the other found nothing left to do.
    expect(results.map((r) => r.length).sort()).toEqual([0, MIGRATIONS.length]);
    expect(results.flat().map((n) => n.replace(/\.[jt]s$/, ''))).toEqual(MIGRATIONS);
    await expectSchemaOnce(url);
    // A later run applies nothing.
    expect(await migrate(a, url)).toEqual([]);
    await expectSchemaOnce(url);
  });

  test('when another process holds the migration lock, then migrate waits for it and then succeeds', async () => {
    const url = await freshDb();
    const orm = await open(url);
    const holder = new pg.Client({ connectionString: url });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
      let done = false;
      const pending = migrate(orm, url).then((r) => {
        done = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      const tables = await holder.query(`select 1 from pg_tables where tablename = 'orders'`);
      expect(tables.rowCount).toBe(0);
      await holder.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      expect((await pending).length).toBe(MIGRATIONS.length);
    } finally {
      await holder.end();
    }
    await expectSchemaOnce(url);
  });
});

describe('when `order-up migrate` runs as a process', () => {
  const cli = path.join(ROOT, 'bin', 'order-up.js');
  beforeAll(async () => {
    // `make test` builds first; a lone jest run builds here when dist/ is missing.
    if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
      await run('make', ['build'], { cwd: ROOT, timeout: 120_000 });
    }
  }, 150_000);

  const migrateCli = (url: string) =>
    run(process.execPath, [cli, 'migrate'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'info' },
      timeout: 20_000,
    });

  test('when two `order-up migrate` processes start at once on a fresh database, then both exit 0 and the schema is there once', async () => {
    const url = await freshDb();
    const [a, b] = await Promise.all([migrateCli(url), migrateCli(url)]);
    expect(a.stdout).toContain('migrations applied');
    expect(b.stdout).toContain('migrations applied');
    await expectSchemaOnce(url);
    // Run again on the migrated database: still exit 0, nothing changes.
    const again = await migrateCli(url);
    expect(again.stdout).toContain('migrations applied');
    await expectSchemaOnce(url);
    // The database password is not written out.
    const password = new URL(url).password;
    if (password) expect(a.stdout + a.stderr + b.stdout + b.stderr + again.stderr).not.toContain(password);
  });
});

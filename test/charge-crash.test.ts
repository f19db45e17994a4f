import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { call, newOrder, startTestApp } from './support/app.js';
import { startChildServer } from './support/child-server.js';
import { FakeChargeService } from './support/fake-charge.js';
import { storedOrder, storedPayments } from './support/state.js';
import { freshDatabaseUrl } from './support/test-db.js';

// These run `order-up serve` as a real child process (from dist/: `make build` first).
let fake: FakeChargeService;
beforeAll(async () => {
  fake = await FakeChargeService.start();
});
afterAll(async () => {
  fake.releaseHung();
  await fake.stop();
});

/**
 * The child's upstream timeout is far beyond the test's own timeout, so a request the fake holds
 * stays in flight until the test lets go of it (or kills the process), however slow the machine.
 */
const childEnv = (databaseUrl: string) => ({
  DATABASE_URL: databaseUrl,
  CHARGE_SERVICE_URL: fake.url,
  FULFILLMENT_SERVICE_URL: fake.url,
  UPSTREAM_TIMEOUT_MS: '120000',
});

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

test('when the process dies while the charge service holds its request, then after a restart the payment is in doubt and never sent again', async () => {
  const databaseUrl = await freshDatabaseUrl('crash');
  const server = await startChildServer(childEnv(databaseUrl));
  const created = await call(server.url, 'POST', '/orders', { body: newOrder() });
  const id = created.body.order.id as string;
  const before = fake.calls.length;
  fake.next({ hang: true });
  const answer = call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_crash' } }).catch(() => 'connection lost' as const);
  await fake.received(before + 1);

  // A live process's work is not touched by another process starting up.
  const other = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    expect(await storedPayments(other, id)).toMatchObject([{ state: 'started' }]);
    const busy = await other.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_2' } });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('operation_in_progress');
  } finally {
    await other.stop();
  }

  server.child.kill('SIGKILL');
  await server.exited;
  expect(await answer).toBe('connection lost');
  fake.releaseHung(); // the charge service may well have taken the money

  const restarted = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    expect(await storedPayments(restarted, id)).toMatchObject([{ state: 'in_doubt', amount_cents: '3300' }]);
    expect(await storedOrder(restarted, id)).toMatchObject({ status: 'pending', operation: null });
    const again = await restarted.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_crash' } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('payment_in_doubt');
    expect(fake.calls.length).toBe(before + 1);
  } finally {
    await restarted.stop();
  }
});

test('when the server gets SIGTERM with charges queued, then it answers every one of them and exits 0', async () => {
  const databaseUrl = await freshDatabaseUrl('drain');
  const server = await startChildServer(childEnv(databaseUrl));
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) ids.push((await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id);
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    const before = fake.calls.length;
    fake.next({ hang: true });
    const answers = ids.map((id, i) => call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: `tok_${i}` } }));
    await fake.received(before + 1);
    // Every charge is journaled (so queued) before the signal.
    await until(async () => {
      const rows = await observer.rt.orm.em.getConnection().execute<{ n: string }[]>(`select count(*) as n from payments`);
      return Number(rows[0].n) === 5;
    });
    server.child.kill('SIGTERM');
    fake.releaseHung();
    const statuses = (await Promise.all(answers)).map((a) => a.status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(await server.exited).toBe(0);
    for (const id of ids) expect((await storedOrder(observer, id))?.status).toBe('charged');
    expect(fake.calls.length - before).toBe(5);
  } finally {
    await observer.stop();
  }
});

test('when the process loses its database lease, then it exits at once instead of carrying on with work others may now recover', async () => {
  const databaseUrl = await freshDatabaseUrl('lease');
  const server = await startChildServer(childEnv(databaseUrl));
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    await observer.rt.orm.em
      .getConnection()
      .execute(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'order-up lease' and pid <> ? and datname = current_database()`, [
        await leasePidOf(observer),
      ]);
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toContain('lost its database lease');
  } finally {
    await observer.stop();
  }
});

/** The backend pid of the observer's own lease, so terminating "the others" spares it. */
async function leasePidOf(app: Awaited<ReturnType<typeof startTestApp>>): Promise<number> {
  const rows = await app.rt.orm.em
    .getConnection()
    .execute<{ pid: number }[]>(
      `select l.pid from pg_locks l where l.locktype = 'advisory' and l.classid = 7100 and l.objid = ? and l.granted`,
      [app.rt.services.processKey],
    );
  return rows[0].pid;
}

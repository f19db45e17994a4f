import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { call, newOrder, startTestApp } from './support/app.js';
import { startChildServer } from './support/child-server.js';
import { DbProxy } from './support/db-proxy.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { recoverAbandonedWork } from '../src/domain/exclusive.js';
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
  const answer = call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_crash' } }).catch(
    () => 'connection lost' as const,
  );
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
      const rows = await observer.db.execute<{ n: string }[]>(`select count(*) as n from payments`);
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

test('when the process loses its database, then it takes no new work (503 not_ready, /readyz 503) without exiting, and works again once it is back', async () => {
  const databaseUrl = await freshDatabaseUrl('lease');
  const proxy = await DbProxy.start(databaseUrl);
  const server = await startChildServer(childEnv(proxy.urlFor(databaseUrl)));
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    // A charge before: the connections it used (pool, charge lock) are the ones the outage breaks.
    const earlier = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    expect((await call(server.url, 'POST', `/orders/${earlier}/charge`, { body: { cardToken: 'tok_before' } })).status).toBe(200);
    expect((await call(server.url, 'GET', '/readyz')).status).toBe(200);

    proxy.cut();
    await until(async () => (await call(server.url, 'GET', '/readyz')).status === 503);
    const before = fake.calls.length;
    const refused = await call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_while_down' } });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('not_ready');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(observer, id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(observer, id)).toEqual([]);

    proxy.restore();
    await until(async () => (await call(server.url, 'GET', '/readyz')).status === 200);
    const charged = await call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_after' } });
    expect(charged.status).toBe(200);
    expect(fake.calls.slice(before)).toEqual([{ cardToken: 'tok_after', amountCents: 3300 }]);
    expect(await storedOrder(observer, id)).toMatchObject({ status: 'charged', operation: null });
    expect(server.child.exitCode).toBeNull(); // the same process all along
    expect(server.stderr()).toContain('lost its database lease');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await observer.stop();
    await proxy.stop();
  }
});

test('when the process loses its lease while a charge waits in its queue, then that charge is never sent (others may have recovered it) and is answered charge_failed', async () => {
  const databaseUrl = await freshDatabaseUrl('lease_queue');
  const server = await startChildServer(childEnv(databaseUrl));
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  try {
    const [a, b] = [
      (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string,
      (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string,
    ];
    const before = fake.calls.length;
    fake.next({ hang: true });
    const first = call(server.url, 'POST', `/orders/${a}/charge`, { body: { cardToken: 'tok_first' } });
    await fake.received(before + 1);
    const second = call(server.url, 'POST', `/orders/${b}/charge`, { body: { cardToken: 'tok_second' } });
    await until(async () => (await storedPayments(observer, b)).length === 1); // journaled, waiting its turn

    // Only the child's lease connection goes: the database stays up, and the child takes a new lease at once.
    const [{ owner }] = await observer.db.execute<{ owner: number }[]>('select owner from payments where order_id = ?', [b]);
    await observer.db.execute(
      `select pg_terminate_backend(l.pid) from pg_locks l where l.locktype = 'advisory' and l.classid = 7100 and l.objid = ? and l.granted`,
      [owner],
    );
    await until(async () => server.stderr().includes('lost its database lease'));
    fake.releaseHung();

    expect((await first).status).toBe(200); // already sent: its outcome is recorded as usual
    const refused = await second;
    expect(refused.status).toBe(502);
    expect(refused.body.code).toBe('charge_failed');
    expect(fake.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_first']);
    expect(await storedOrder(observer, b)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(observer, b)).toMatchObject([{ state: 'failed' }]);

    // Under its new lease the process charges again.
    await until(async () => (await call(server.url, 'GET', '/readyz')).status === 200);
    expect((await call(server.url, 'POST', `/orders/${b}/charge`, { body: { cardToken: 'tok_second' } })).status).toBe(200);
    expect(fake.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_first', 'tok_second']);
    expect(server.child.exitCode).toBeNull();
  } finally {
    fake.releaseHung();
    server.child.kill('SIGTERM');
    await server.exited;
    await observer.stop();
  }
});

/** Ends the lease connection of the process that owns `orderId`'s operation (the database stays up). */
async function cutLeaseOfOwner(observer: Awaited<ReturnType<typeof startTestApp>>, orderId: string): Promise<void> {
  const db = observer.db;
  const [{ owner }] = await db.execute<{ owner: number }[]>('select operation_owner as owner from orders where id = ?', [orderId]);
  await db.execute(
    `select pg_terminate_backend(l.pid) from pg_locks l where l.locktype = 'advisory' and l.classid = 7100 and l.objid = ? and l.granted`,
    [owner],
  );
}

test('when the process loses its lease during a fulfill, then it sends no further item, and the order stays its own until the fulfill ends (its new lease holds the old key too)', async () => {
  const fulfillment = await FakeFulfillmentService.start();
  const databaseUrl = await freshDatabaseUrl('lease_fulfill');
  const server = await startChildServer({ ...childEnv(databaseUrl), FULFILLMENT_SERVICE_URL: fulfillment.url });
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url, fulfillmentUrl: fulfillment.url });
  try {
    const lineItems = ['A', 'B', 'C', 'D', 'E'].map((description) => ({ description, priceCents: 100, quantity: 1 }));
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder({ lineItems }) })).body.order.id as string;
    expect((await call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_goods' } })).status).toBe(200);
    for (const d of ['A', 'B', 'C', 'D']) fulfillment.fail(d, 'hang');
    const fulfilling = call(server.url, 'POST', `/orders/${id}/fulfill`, { staff: true });
    await until(async () => fulfillment.calls.length === 4); // four at once; E waits for a free slot

    await cutLeaseOfOwner(observer, id);
    await until(async () => server.stderr().includes('has a new database lease'));
    // The process lives on and holds its old key again: nobody may take its fulfill for abandoned.
    const meanwhile = await observer.call('POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'out of stock' } });
    expect(meanwhile.status).toBe(409);
    expect(meanwhile.body.code).toBe('operation_in_progress');
    fulfillment.heal();
    fulfillment.releaseHung();

    const answer = await fulfilling;
    expect(answer.status).toBe(503);
    expect(answer.body.code).toBe('not_ready');
    expect(fulfillment.calls.map((c) => c.description)).toEqual(['A', 'B', 'C', 'D']); // E never sent
    expect(await storedOrder(observer, id)).toMatchObject({ status: 'charged', operation: null });
    // Once the fulfill has let go, the order can be cancelled (and is refunded) as usual.
    const cancelled = await observer.call('POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'out of stock' } });
    expect(cancelled.status).toBe(200);
    expect(await storedOrder(observer, id)).toMatchObject({ status: 'cancelled', operation: null });
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await observer.stop();
    await fulfillment.stop();
  }
});

test('when another process recovers an order while its refund is being journaled, then the refund is not sent, recorded failed (not stuck), and a later cancel refunds once', async () => {
  const databaseUrl = await freshDatabaseUrl('lease_refund');
  const server = await startChildServer(childEnv(databaseUrl));
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  const db = observer.db;
  try {
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    expect((await call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_refund' } })).status).toBe(200);
    const before = fake.calls.length;
    // Journaling a refund takes a second: time for the lease to go and for another process to recover.
    await db.execute(
      `create function order_up_test_slow() returns trigger language plpgsql as $$ begin perform pg_sleep(1); return new; end $$`,
    );
    await db.execute(
      `create trigger order_up_test_slow before insert on payments for each row when (new.kind = 'refund') execute function order_up_test_slow()`,
    );
    const cancelling = call(server.url, 'POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'first try' } });
    await until(async () => (await storedOrder(observer, id))?.operation === 'cancel');
    await cutLeaseOfOwner(observer, id);
    await until(async () => server.stderr().includes('lost its database lease'));
    await recoverAbandonedWork(observer.rt.context()); // what any other process does on finding the order
    await db.execute('drop trigger order_up_test_slow on payments');
    await db.execute('drop function order_up_test_slow()');

    const answer = await cancelling;
    expect(answer.status).toBe(502);
    expect(answer.body.code).toBe('charge_failed');
    expect(fake.calls.length).toBe(before); // no refund sent
    expect(await storedPayments(observer, id)).toMatchObject([
      { kind: 'charge', state: 'succeeded' },
      { kind: 'refund', state: 'failed' },
    ]);
    expect(await storedOrder(observer, id)).toMatchObject({ status: 'charged', operation: null });

    const again = await observer.call('POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'second try' } });
    expect(again.status).toBe(200);
    expect(again.body.refundedCents).toBe(3300);
    expect(fake.calls.slice(before)).toEqual([{ cardToken: 'tok_refund', amountCents: -3300 }]);
  } finally {
    await db.execute('drop trigger if exists order_up_test_slow on payments');
    await db.execute('drop function if exists order_up_test_slow()');
    server.child.kill('SIGTERM');
    await server.exited;
    await observer.stop();
  }
});

test('when the lease connection only answers slowly, then the process stops taking new work but keeps its lease (nobody may recover its work), and resumes when it answers again', async () => {
  const databaseUrl = await freshDatabaseUrl('lease_slow');
  const proxy = await DbProxy.start(databaseUrl);
  const server = await startChildServer({ ...childEnv(proxy.urlFor(databaseUrl)), ORDER_UP_LEASE_PING_MS: '200' });
  const observer = await startTestApp({ databaseUrl, chargeUrl: fake.url });
  const leases = async () => {
    const [row] = await observer.db.execute<{ n: string }[]>(
      `select count(*) as n from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' and l.classid = 7100 and l.granted and a.application_name = 'order-up lease'`,
    );
    return Number(row.n);
  };
  try {
    expect(await leases()).toBe(2); // the child's and the observer's
    proxy.slow(1000);
    await until(async () => (await call(server.url, 'GET', '/readyz')).status === 503);
    expect(await leases()).toBe(2); // still held: its work cannot be taken for abandoned
    proxy.slow(0);
    await until(async () => (await call(server.url, 'GET', '/readyz')).status === 200);
    expect(await leases()).toBe(2);
    expect(server.stderr()).toContain('does not answer');
    expect(server.stderr()).not.toContain('lost its database lease');
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    expect((await call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_slow_db' } })).status).toBe(200);
  } finally {
    proxy.slow(0);
    server.child.kill('SIGTERM');
    await server.exited;
    await observer.stop();
    await proxy.stop();
  }
});

// A database blip loses no known outcome (README "Limits"): when PostgreSQL goes away between the
// charge service's answer and its record, order-up keeps the order held and writes the outcome once
// the database is back - within the caller's wait, or after answering 502 payment_in_doubt.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { DbProxy } from './support/db-proxy.js';
import { FakeChargeService } from './support/fake-charge.js';
import { testSql, type TestSql } from './support/sql.js';
import { freshDatabaseUrl } from './support/test-db.js';
import { storedOrder, storedPayments } from './support/state.js';

/** How long the database stays away: an outage, not a synchronisation. */
const OUTAGE_MS = 3000;

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('when the database goes away while a payment is under way', () => {
  let charge: FakeChargeService;
  let databaseUrl: string;
  let proxy: DbProxy;
  let direct: TestSql;
  let app: TestApp | undefined;

  beforeAll(async () => {
    charge = await FakeChargeService.start();
  });
  afterEach(async () => {
    charge.releaseHung();
    proxy?.restore();
    await app?.stop();
    app = undefined;
    await direct?.close();
    await proxy?.stop();
  });
  afterAll(async () => {
    await charge?.stop();
  });

  async function start(env: Record<string, string> = {}): Promise<TestApp> {
    databaseUrl = await freshDatabaseUrl('outage');
    proxy = await DbProxy.start(databaseUrl);
    direct = testSql(databaseUrl);
    app = await startTestApp({
      databaseUrl: proxy.urlFor(databaseUrl),
      chargeUrl: charge.url,
      env: { ORDER_UP_DB_TIMEOUT_MS: '1000', ...env },
    });
    return app;
  }

  const stored = () => ({ db: direct });

  /** Cuts the database for OUTAGE_MS once `cut` has happened, then gives it back. */
  async function outage(during: () => void): Promise<void> {
    proxy.cut();
    during();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    proxy.restore();
  }

  test('when the charge service has answered 201 and the database is back 3 s later, then the caller gets 200, the payment is succeeded and the order charged; nothing is in doubt', async () => {
    const a = await start();
    const id = (await a.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    const before = charge.calls.length;
    charge.next({ hang: true });
    const charging = a.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_blip' } });
    await charge.received(before + 1);

    await outage(() => charge.releaseHung(201)); // the money is taken while the database is away
    const reply = await charging;
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ chargedCents: reply.body.order.totalCents, order: { id, status: 'charged' } });
    expect(await storedOrder(stored(), id)).toMatchObject({ status: 'charged', operation: null });
    expect(await storedPayments(stored(), id)).toMatchObject([
      { kind: 'charge', state: 'succeeded', outcome: 'charge service answered 201' },
    ]);
    expect(await direct.execute(`select id from payments where state in ('in_doubt', 'started')`)).toEqual([]);
    expect(charge.calls.slice(before)).toEqual([{ cardToken: 'tok_blip', amountCents: reply.body.order.totalCents }]);
  });

  test('when a charge waiting its turn is never sent because the database went away, then it is recorded failed once the database is back and the order can be charged', async () => {
    const a = await start();
    const first = (await a.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    const second = (await a.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    const before = charge.calls.length;
    charge.next({ hang: true });
    const firstCharge = a.call('POST', `/orders/${first}/charge`, { body: { cardToken: 'tok_first' } });
    await charge.received(before + 1);
    const secondCharge = a.call('POST', `/orders/${second}/charge`, { body: { cardToken: 'tok_second' } });
    await until(async () => (await storedPayments(stored(), second)).length === 1); // journaled, waiting its turn

    proxy.cut();
    // Once the process knows its lease is gone, the waiting charge may not be sent any more.
    await until(async () => !a.rt.services.lease.held);
    charge.releaseHung(201);
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    proxy.restore();

    expect((await firstCharge).status).toBe(200);
    const refused = await secondCharge;
    expect(refused.status).toBe(502);
    expect(refused.body.code).toBe('charge_failed');
    expect(charge.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_first']);
    expect(await storedOrder(stored(), first)).toMatchObject({ status: 'charged', operation: null });
    expect(await storedOrder(stored(), second)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(stored(), second)).toMatchObject([{ state: 'failed' }]);

    // Nothing stands in the way of charging it now (once the process has its lease back).
    await until(async () => (await a.call('GET', '/readyz')).status === 200);
    expect((await a.call('POST', `/orders/${second}/charge`, { body: { cardToken: 'tok_second' } })).status).toBe(200);
    expect(charge.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_first', 'tok_second']);
  });

  test("when the outage outlasts the caller's wait, then 502 payment_in_doubt at once, the order stays held while the outcome is written, and it ends charged with nothing in doubt", async () => {
    const a = await start({ ORDER_UP_OUTCOME_WAIT_MS: '300' });
    const id = (await a.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    const before = charge.calls.length;
    charge.next({ hang: true });
    const charging = a.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_long' } });
    await charge.received(before + 1);

    proxy.cut();
    charge.releaseHung(201);
    const reply = await charging; // answered while the database is still away
    expect(reply.status).toBe(502);
    expect(reply.body).toMatchObject({ code: 'payment_in_doubt', status: 502 });
    expect(reply.body.detail).toMatch(/keeps trying/);
    expect(await storedOrder(stored(), id)).toMatchObject({ status: 'pending', operation: 'charge' }); // still held
    proxy.restore();

    await until(async () => (await storedOrder(stored(), id))?.status === 'charged');
    expect(await storedOrder(stored(), id)).toMatchObject({ status: 'charged', operation: null });
    expect(await storedPayments(stored(), id)).toMatchObject([{ state: 'succeeded' }]);
    expect(charge.calls.slice(before)).toHaveLength(1);
    const retry = await a.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_long' } });
    expect(retry.status).toBe(409);
    expect(retry.body.code).toBe('order_not_pending');
    expect(charge.calls.slice(before)).toHaveLength(1);
  });

  test('when a charge with an Idempotency-Key was answered 502 while its outcome was still being written, then the key stays running meanwhile and a retry afterwards replays the real 200', async () => {
    const a = await start({ ORDER_UP_OUTCOME_WAIT_MS: '300' });
    const id = (await a.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    const before = charge.calls.length;
    const keyed = () =>
      a.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_keyed' }, headers: { 'idempotency-key': 'pay-once' } });
    charge.next({ hang: true });
    const charging = keyed();
    await charge.received(before + 1);

    proxy.cut();
    charge.releaseHung(201);
    expect((await charging).body.code).toBe('payment_in_doubt');
    expect(await direct.execute(`select state from idempotency_keys`)).toEqual([{ state: 'running' }]);
    proxy.restore();

    await until(async () => (await storedOrder(stored(), id))?.status === 'charged');
    const replay = await keyed();
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toMatchObject({ order: { id, status: 'charged' } });
    expect(charge.calls.slice(before)).toHaveLength(1);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { LogCapture } from './support/log-capture.js';
import { storedOrder, storedPayments } from './support/state.js';

let fake: FakeChargeService;
let app: TestApp;

beforeAll(async () => {
  fake = await FakeChargeService.start();
  app = await startTestApp({ chargeUrl: fake.url, env: { UPSTREAM_TIMEOUT_MS: '400' } });
});
afterAll(async () => {
  fake.releaseHung();
  await app?.stop();
  await fake?.stop();
});
afterEach(() => {
  fake.default = { status: 201 };
});

async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

async function pendingOrder(body: Record<string, unknown> = {}): Promise<{ id: string; totalCents: number }> {
  const res = await app.call('POST', '/orders', { body: newOrder(body) });
  expect(res.status).toBe(201);
  return res.body.order;
}

const charge = (id: string, cardToken = 'tok_visa_4242') => app.call('POST', `/orders/${id}/charge`, { body: { cardToken } });

describe('charging a pending order', () => {
  test('when the charge service accepts, then the order is charged for its total and the payment is journaled', async () => {
    const order = await pendingOrder();
    const before = fake.calls.length;
    const res = await charge(order.id);
    expect(res.status).toBe(200);
    expect(res.body.chargedCents).toBe(3300);
    expect(res.body.order).toMatchObject({ id: order.id, status: 'charged', totalCents: 3300 });
    expect(res.body.order.chargedAt).not.toBeNull();
    expect(JSON.stringify(res.body)).not.toContain('tok_visa_4242');
    expect(fake.calls.slice(before)).toEqual([{ cardToken: 'tok_visa_4242', amountCents: 3300 }]);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'charged', operation: null });
    expect(await storedPayments(app, order.id)).toMatchObject([
      { kind: 'charge', amount_cents: '3300', state: 'succeeded', card_token: 'tok_visa_4242' },
    ]);
  });

  test('when the total is zero, then the order is charged with no call to the charge service', async () => {
    const order = await pendingOrder({ lineItems: [{ description: 'Free sample', priceCents: 0, quantity: 3 }] });
    const before = fake.calls.length;
    const res = await charge(order.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ chargedCents: 0, order: { status: 'charged' } });
    expect(fake.calls.length).toBe(before);
    expect(await storedPayments(app, order.id)).toEqual([]);
  });

  test('when the order is already charged, then 409 order_not_pending and no second call', async () => {
    const order = await pendingOrder();
    expect((await charge(order.id)).status).toBe(200);
    const before = fake.calls.length;
    const res = await charge(order.id);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('order_not_pending');
    expect(fake.calls.length).toBe(before);
  });

  test('when the order does not exist, then 404 order_not_found and no call', async () => {
    const before = fake.calls.length;
    const res = await charge('no-such-order');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('order_not_found');
    expect(fake.calls.length).toBe(before);
  });

  test('when the card token is missing or not a string, then 400 invalid_request and no call', async () => {
    const order = await pendingOrder();
    const before = fake.calls.length;
    for (const body of [{}, { cardToken: '' }, { cardToken: 42 }, { cardToken: 'tok', extra: 1 }]) {
      const res = await app.call('POST', `/orders/${order.id}/charge`, { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
  });
});

describe('when the charge service fails', () => {
  test('when it declines (4xx), then 402 payment_declined, the order stays pending and can be charged again', async () => {
    const order = await pendingOrder();
    fake.next({ status: 402 });
    const res = await charge(order.id, 'tok_decline');
    expect(res.status).toBe(402);
    expect(res.body.code).toBe('payment_declined');
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'failed' }]);

    const retry = await charge(order.id, 'tok_other_card');
    expect(retry.status).toBe(200);
    expect(fake.calls.at(-1)).toEqual({ cardToken: 'tok_other_card', amountCents: 3300 });
  });

  test('when it answers 500, then 502 charge_failed and the order stays pending', async () => {
    const order = await pendingOrder();
    fake.next({ status: 500 });
    const res = await charge(order.id);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('charge_failed');
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'failed', outcome: 'charge service answered 500' }]);
  });

  test('when it times out, then 504 upstream_timeout, the payment is in doubt and blocks further charges and cancels', async () => {
    const order = await pendingOrder();
    fake.next({ hang: true });
    const res = await charge(order.id);
    expect(res.status).toBe(504);
    expect(res.body.code).toBe('upstream_timeout');
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'in_doubt' }]);

    const calls = fake.calls.length;
    const again = await charge(order.id);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('payment_in_doubt');
    const cancel = await app.call('POST', `/orders/${order.id}/cancel`, { staff: true });
    expect(cancel.status).toBe(409);
    expect(cancel.body.code).toBe('payment_in_doubt');
    expect(fake.calls.length).toBe(calls);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending' });
    fake.releaseHung(); // the service finishes the abandoned request, as a real one would
  });

  test('when a charge times out, then the next one is not sent until the service has answered it: one request at the service at a time', async () => {
    const logs = new LogCapture();
    const own = await startTestApp({
      databaseUrl: app.rt.databaseUrl,
      chargeUrl: fake.url,
      env: { UPSTREAM_TIMEOUT_MS: '300' },
      logDestination: logs,
      logLevel: 'warn',
    });
    try {
      const [a, b] = [await pendingOrder(), await pendingOrder()];
      const before = fake.calls.length;
      fake.maxInFlight = fake.inFlight;
      fake.next({ hang: true });
      const timedOut = await own.call('POST', `/orders/${a.id}/charge`, { body: { cardToken: 'tok_slow' } });
      expect(timedOut.status).toBe(504);
      expect(timedOut.body.code).toBe('upstream_timeout');

      const second = own.call('POST', `/orders/${b.id}/charge`, { body: { cardToken: 'tok_next' } });
      await until(async () => (await storedPayments(app, b.id)).length === 1);
      // Journaled and waiting: the timed-out request still holds the queue.
      expect(own.rt.services.charge.waiting).toBe(1);
      expect(fake.calls.length).toBe(before + 1);

      fake.releaseHung(); // the service finally answers the first
      expect((await second).status).toBe(200);
      expect(fake.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_slow', 'tok_next']);
      expect(fake.maxInFlight).toBe(1);
      // Staff decide, not a late answer - but they see it in the in-doubt list.
      await until(async () => String((await storedPayments(app, a.id))[0].outcome).includes('later'));
      expect(await storedPayments(app, a.id)).toMatchObject([
        { state: 'in_doubt', outcome: 'no answer before the timeout; later: charge service answered 201' },
      ]);
      expect(await storedOrder(app, a.id)).toMatchObject({ status: 'pending', operation: null });
      await until(async () => logs.text.includes('answered the timed-out charge late'));
      expect(logs.records().find((r) => String(r.msg).includes('late'))).toMatchObject({
        kind: 'charge',
        lateOutcome: 'charge service answered 201',
      });
    } finally {
      await own.stop();
    }
  });

  test('when the service never answers a timed-out charge, then the queue gives it up after twice the timeout again and moves on', async () => {
    const own = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url, env: { UPSTREAM_TIMEOUT_MS: '200' } });
    try {
      const [a, b] = [await pendingOrder(), await pendingOrder()];
      const before = fake.calls.length;
      fake.next({ hang: true });
      expect((await own.call('POST', `/orders/${a.id}/charge`, { body: { cardToken: 'tok_lost' } })).status).toBe(504);
      const answeredAt = performance.now();
      const second = own.call('POST', `/orders/${b.id}/charge`, { body: { cardToken: 'tok_after' } });
      await fake.received(before + 2);
      // Not before the unanswered request was given up: twice the timeout after it timed out.
      expect(performance.now() - answeredAt).toBeGreaterThanOrEqual(2 * 200 - 20);
      expect((await second).status).toBe(200);
      expect(fake.calls.slice(before).map((c) => c.cardToken)).toEqual(['tok_lost', 'tok_after']);
      expect(await storedPayments(app, a.id)).toMatchObject([{ state: 'in_doubt' }]);
    } finally {
      fake.releaseHung();
      await own.stop();
    }
  });

  test('when the service never answers a timed-out refund, then the in-doubt note and the log say the extra wait ran out, not that it answered', async () => {
    const logs = new LogCapture();
    const own = await startTestApp({
      databaseUrl: app.rt.databaseUrl,
      chargeUrl: fake.url,
      env: { UPSTREAM_TIMEOUT_MS: '200' },
      logDestination: logs,
      logLevel: 'warn',
    });
    try {
      const order = await pendingOrder();
      expect((await own.call('POST', `/orders/${order.id}/charge`, { body: { cardToken: 'tok_ok' } })).status).toBe(200);
      fake.next({ hang: true });
      const res = await own.call('POST', `/orders/${order.id}/cancel`, { staff: true });
      expect(res.status).toBe(504);
      expect(res.body.code).toBe('upstream_timeout');
      const refund = async () => (await storedPayments(app, order.id)).find((p) => p.kind === 'refund')!;
      await until(async () => String((await refund()).outcome).includes('later'));
      // What `order-up payments in-doubt` shows under WHAT HAPPENED.
      expect(await refund()).toMatchObject({
        state: 'in_doubt',
        outcome: 'no answer before the timeout; later: still no answer after 0.4 s more',
      });
      await until(() => logs.text.includes('lateOutcome'));
      const note = logs.records().find((r) => r.lateOutcome !== undefined)!;
      expect(note).toMatchObject({ kind: 'refund', lateOutcome: 'still no answer after 0.4 s more' });
      expect(String(note.msg)).toContain('gave no answer to the timed-out refund');
      expect(logs.text).not.toContain('answered the timed-out');
    } finally {
      fake.releaseHung();
      await own.stop();
    }
  });

  test('when the connection of a timed-out charge breaks before any answer, then the note says so, not that the service answered', async () => {
    const logs = new LogCapture();
    const own = await startTestApp({
      databaseUrl: app.rt.databaseUrl,
      chargeUrl: fake.url,
      env: { UPSTREAM_TIMEOUT_MS: '200' },
      logDestination: logs,
      logLevel: 'warn',
    });
    try {
      const order = await pendingOrder();
      fake.next({ reset: true, delayMs: 300 });
      expect((await own.call('POST', `/orders/${order.id}/charge`, { body: { cardToken: 'tok_reset_late' } })).status).toBe(504);
      await until(async () => String((await storedPayments(app, order.id))[0].outcome).includes('later'));
      expect(await storedPayments(app, order.id)).toMatchObject([
        { state: 'in_doubt', outcome: 'no answer before the timeout; later: the connection broke without an answer' },
      ]);
      await until(() => logs.text.includes('lateOutcome'));
      expect(logs.text).not.toContain('answered the timed-out');
    } finally {
      await own.stop();
    }
  });

  test('when the outcome cannot be recorded, then 502 payment_in_doubt (not a bare 500), the payment is in doubt and the order released', async () => {
    const order = await pendingOrder();
    const db = app.db;
    // The database refuses to record a success (as an outage would); marking in doubt still works.
    await db.execute(
      `create function order_up_test_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`,
    );
    await db.execute(
      `create trigger order_up_test_refuse before update on payments for each row when (new.state = 'succeeded') execute function order_up_test_refuse()`,
    );
    try {
      const before = fake.calls.length;
      const res = await charge(order.id);
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('payment_in_doubt');
      expect(fake.calls.length).toBe(before + 1);
      expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'in_doubt' }]);
      expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
      expect((await charge(order.id)).body.code).toBe('payment_in_doubt');
      expect(fake.calls.length).toBe(before + 1);
    } finally {
      await db.execute('drop trigger order_up_test_refuse on payments');
      await db.execute('drop function order_up_test_refuse()');
    }
  });

  test('when the connection is reset after the request, then 502 payment_in_doubt and the payment is in doubt', async () => {
    const order = await pendingOrder();
    fake.next({ reset: true });
    const res = await charge(order.id);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('payment_in_doubt');
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'in_doubt' }]);
    const again = await charge(order.id);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('payment_in_doubt');
  });

  test('when a charge takes longer than the idle-socket timeout (2 s), then it is still waited for and succeeds', async () => {
    const patient = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url, env: { UPSTREAM_TIMEOUT_MS: '10000' } });
    try {
      const order = await pendingOrder();
      fake.next({ status: 201, delayMs: 2300 });
      const res = await patient.call('POST', `/orders/${order.id}/charge`, { body: { cardToken: 'tok_slow' } });
      expect(res.status).toBe(200);
      expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'succeeded' }]);
    } finally {
      await patient.stop();
    }
  });

  test('when it cannot be reached at all, then 502 charge_failed and nothing is in doubt', async () => {
    const unreachable = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: 'http://127.0.0.1:9' });
    try {
      const order = await pendingOrder();
      const res = await unreachable.call('POST', `/orders/${order.id}/charge`, { body: { cardToken: 'tok_1' } });
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('charge_failed');
      expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
      expect(await storedPayments(app, order.id)).toMatchObject([{ state: 'failed' }]);
    } finally {
      await unreachable.stop();
    }
  });
});

describe('concurrency', () => {
  test('when ten charges of one order arrive at once, then exactly one reaches the charge service', async () => {
    const order = await pendingOrder();
    const before = fake.calls.length;
    fake.default = { status: 201, delayMs: 20 };
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => charge(order.id, `tok_${i}`)));
    const ok = answers.filter((a) => a.status === 200);
    expect(ok).toHaveLength(1);
    for (const a of answers.filter((a) => a.status !== 200)) {
      expect(a.status).toBe(409);
      expect(['operation_in_progress', 'order_not_pending']).toContain(a.body.code);
    }
    expect(fake.calls.length - before).toBe(1);
    expect(await storedPayments(app, order.id)).toHaveLength(1);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'charged', operation: null });
  });

  test('when many orders are charged at once through two instances on one database, then never two calls are in flight and all are charged', async () => {
    const second = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url });
    try {
      const orders = await Promise.all(Array.from({ length: 30 }, () => pendingOrder()));
      fake.maxInFlight = 0;
      fake.default = { status: 201, delayMs: 3 };
      const before = fake.calls.length;
      const answers = await Promise.all(
        orders.map((o, i) => (i % 2 === 0 ? app : second).call('POST', `/orders/${o.id}/charge`, { body: { cardToken: `tok_${i}` } })),
      );
      expect(answers.map((a) => a.status)).toEqual(orders.map(() => 200));
      expect(fake.maxInFlight).toBe(1);
      expect(fake.calls.length - before).toBe(30);
      for (const o of orders) expect((await storedOrder(app, o.id))?.status).toBe('charged');
    } finally {
      await second.stop();
    }
  });

  test('when charges queue up in one process, then they reach the charge service in arrival order', async () => {
    const orders = [];
    for (let i = 1; i <= 4; i += 1) {
      orders.push(await pendingOrder({ lineItems: [{ description: 'Item', priceCents: 100 * i, quantity: 1 }] }));
    }
    const before = fake.calls.length;
    fake.next({ hang: true });
    const first = charge(orders[0].id);
    await fake.received(before + 1);
    // Each later request is in the queue before the next is sent: arrival order is unambiguous.
    const rest = [];
    for (const [i, o] of orders.slice(1).entries()) {
      rest.push(charge(o.id));
      while (app.rt.services.charge.waiting < i + 1) await new Promise((r) => setImmediate(r));
    }
    fake.releaseHung();
    const answers = await Promise.all([first, ...rest]);
    // The first was answered by the fake only after the client had timed out: it is in doubt.
    expect(answers.slice(1).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(fake.calls.slice(before).map((c) => c.amountCents)).toEqual([100, 200, 300, 400]);
  });

  test('when more charges wait than ORDER_UP_CHARGE_QUEUE_MAX, then 503 charge_queue_full with Retry-After and nothing written', async () => {
    const small = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url, env: { ORDER_UP_CHARGE_QUEUE_MAX: '1' } });
    try {
      const [a, b, c] = [await pendingOrder(), await pendingOrder(), await pendingOrder()];
      const before = fake.calls.length;
      fake.next({ status: 201, delayMs: 150 });
      const first = small.call('POST', `/orders/${a.id}/charge`, { body: { cardToken: 'tok_a' } });
      await fake.received(before + 1);
      const second = small.call('POST', `/orders/${b.id}/charge`, { body: { cardToken: 'tok_b' } });
      while (small.rt.services.charge.waiting < 1) await new Promise((r) => setImmediate(r));
      const third = await small.call('POST', `/orders/${c.id}/charge`, { body: { cardToken: 'tok_c' } });
      expect(third.status).toBe(503);
      expect(third.body.code).toBe('charge_queue_full');
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await storedOrder(app, c.id)).toMatchObject({ status: 'pending', operation: null });
      expect(await storedPayments(app, c.id)).toEqual([]);
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect(fake.calls.slice(before).map((x) => x.cardToken)).toEqual(['tok_a', 'tok_b']);
    } finally {
      await small.stop();
    }
  });

  test('when the queue is full or no charge service is configured, then a zero total is still charged (it needs no call)', async () => {
    const full = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url, env: { ORDER_UP_CHARGE_QUEUE_MAX: '0' } });
    const none = await startTestApp({ databaseUrl: app.rt.databaseUrl, env: { CHARGE_SERVICE_URL: '' } });
    try {
      const [busy, paid, free, freeToo] = [
        await pendingOrder(),
        await pendingOrder(),
        await pendingOrder({ lineItems: [{ description: 'Free sample', priceCents: 0, quantity: 1 }] }),
        await pendingOrder({ lineItems: [{ description: 'Free sample', priceCents: 0, quantity: 2 }] }),
      ];
      const before = fake.calls.length;
      fake.next({ hang: true });
      const first = full.call('POST', `/orders/${busy.id}/charge`, { body: { cardToken: 'tok_busy' } });
      await fake.received(before + 1);
      // The queue has no room: a charge with a total is refused, a free order is not.
      const refused = await full.call('POST', `/orders/${paid.id}/charge`, { body: { cardToken: 'tok_paid' } });
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('charge_queue_full');
      const freeReply = await full.call('POST', `/orders/${free.id}/charge`, { body: { cardToken: 'tok_free' } });
      expect(freeReply.status).toBe(200);
      expect(freeReply.body).toMatchObject({ chargedCents: 0, order: { status: 'charged' } });
      expect(await storedOrder(app, free.id)).toMatchObject({ status: 'charged', operation: null });
      expect(await storedPayments(app, free.id)).toEqual([]);

      // No charge service at all: the same.
      const noneReply = await none.call('POST', `/orders/${freeToo.id}/charge`, { body: { cardToken: 'tok_free' } });
      expect(noneReply.status).toBe(200);
      expect(await storedOrder(app, freeToo.id)).toMatchObject({ status: 'charged', operation: null });
      const unconfigured = await none.call('POST', `/orders/${paid.id}/charge`, { body: { cardToken: 'tok_paid' } });
      expect(unconfigured.status).toBe(502);
      expect(unconfigured.body.code).toBe('charge_failed');
      expect(await storedOrder(app, paid.id)).toMatchObject({ status: 'pending', operation: null });
      expect(await storedPayments(app, paid.id)).toEqual([]);

      fake.releaseHung();
      expect((await first).status).toBe(200);
      expect(fake.calls.slice(before).map((x) => x.cardToken)).toEqual(['tok_busy']);
    } finally {
      await full.stop();
      await none.stop();
    }
  });

  test('when a refused charge held a place in the queue, then the cross-process lock is still handed over afterwards', async () => {
    const other = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url });
    try {
      const [a, b] = [await pendingOrder(), await pendingOrder()];
      const before = fake.calls.length;
      fake.next({ status: 201, delayMs: 100 });
      const first = charge(a.id);
      await fake.received(before + 1);
      // Takes a place in the queue behind the call in flight, then is refused (no such order).
      expect((await charge('no-such-order')).status).toBe(404);
      expect((await first).status).toBe(200);
      // Another process can now call: the lock was not kept by the idle one.
      const res = await other.call('POST', `/orders/${b.id}/charge`, { body: { cardToken: 'tok_other' } });
      expect(res.status).toBe(200);
    } finally {
      await other.stop();
    }
  });
});

describe('recovery of orders this process left behind', () => {
  test('when an order was left claimed by this process after a failure, then the next operation recovers it', async () => {
    const order = await pendingOrder();
    await app.db.execute(`update orders set operation = 'charge', operation_owner = ?, operation_token = gen_random_uuid() where id = ?`, [
      app.rt.services.processKey,
      order.id,
    ]);
    const res = await charge(order.id);
    expect(res.status).toBe(200);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'charged', operation: null });
  });

  test('when a payment was left started on an order nobody holds, then it is treated as in doubt and nothing is sent', async () => {
    const order = await pendingOrder();
    await app.db.execute(
      `insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at)
         values (gen_random_uuid(), ?, 'charge', 3300, 'tok_left', 'started', ?, now(), now())`,
      [order.id, app.rt.services.processKey],
    );
    const before = fake.calls.length;
    const res = await charge(order.id);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('payment_in_doubt');
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
  });

  test("when a claim is finished or released with another claim's token, then nothing is written", async () => {
    const order = await pendingOrder();
    const { processKey } = app.rt.services;
    const current = '00000000-0000-4000-8000-000000000001';
    const stale = '00000000-0000-4000-8000-000000000002';
    const { claims } = app.rt.db;
    await app.db.execute(`update orders set operation = 'fulfill', operation_owner = ?, operation_token = ? where id = ?`, [
      processKey,
      current,
      order.id,
    ]);
    await claims.abandon({ id: order.id, token: stale, owner: processKey, state: 'in_doubt', outcome: 'x', who: { kind: 'system' } });
    const change = {
      status: 'cancelled' as const,
      updatedAt: new Date(),
      chargedAt: null,
      fulfilledAt: null,
      cancelledAt: new Date(),
      cancelReason: null,
    };
    expect(await claims.finish({ id: order.id, token: stale, change })).toBe(false);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: 'fulfill' });
    expect(await claims.finish({ id: order.id, token: current })).toBe(true);
    expect(await storedOrder(app, order.id)).toMatchObject({ status: 'pending', operation: null });
  });
});

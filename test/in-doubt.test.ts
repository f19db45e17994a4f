// The in-doubt procedure's domain functions, against real PostgreSQL: payments are put in doubt
// the way it happens in production (the charge service's connection breaks after the request).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { listInDoubtPayments, resolvePayment } from '../src/domain/in-doubt.js';
import { AppError } from '../src/domain/errors.js';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';

let charge: FakeChargeService;
let app: TestApp;
const TOKEN = 'tok_in_doubt_secret_5151';

beforeAll(async () => {
  charge = await FakeChargeService.start();
  app = await startTestApp({ chargeUrl: charge.url });
});
afterEach(() => {
  charge.default = { status: 201 };
});
afterAll(async () => {
  await app?.stop();
  await charge?.stop();
});

const ctx = () => app.rt.context();

async function pendingOrder(): Promise<string> {
  const res = await app.call('POST', '/orders', { body: newOrder() });
  expect(res.status).toBe(201);
  return res.body.order.id;
}

async function chargeInDoubt(): Promise<{ orderId: string; paymentId: string }> {
  const orderId = await pendingOrder();
  charge.next({ reset: true });
  const res = await app.call('POST', `/orders/${orderId}/charge`, { body: { cardToken: TOKEN } });
  expect(res).toMatchObject({ status: 502, body: { code: 'payment_in_doubt' } });
  return { orderId, paymentId: await paymentOf(orderId, 'charge') };
}

async function refundInDoubt(): Promise<{ orderId: string; paymentId: string }> {
  const orderId = await pendingOrder();
  expect((await app.call('POST', `/orders/${orderId}/charge`, { body: { cardToken: TOKEN } })).status).toBe(200);
  charge.next({ reset: true });
  const res = await app.call('POST', `/orders/${orderId}/cancel`, { staff: true, body: { reason: 'changed mind' } });
  expect(res).toMatchObject({ status: 502, body: { code: 'payment_in_doubt' } });
  return { orderId, paymentId: await paymentOf(orderId, 'refund') };
}

async function paymentOf(orderId: string, kind: string): Promise<string> {
  const rows = await app.db.execute<{ id: string }[]>(
    'select id from payments where order_id = ? and kind = ? order by created_at desc limit 1',
    [orderId, kind],
  );
  return rows[0].id;
}

async function stored(paymentId: string) {
  const rows = await app.db.execute<
    { state: string; outcome: string; order_id: string; status: string; charged_at: Date | null; operation: string | null }[]
  >(
    `select p.state, p.outcome, p.order_id, o.status, o.charged_at, o.operation
       from payments p join orders o on o.id = p.order_id where p.id = ?`,
    [paymentId],
  );
  return rows[0];
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return e.code;
    throw e;
  }
  throw new Error('expected an AppError');
}

describe('listInDoubtPayments', () => {
  test('lists every in-doubt charge and refund with what staff need, and never the card token', async () => {
    const c = await chargeInDoubt();
    const r = await refundInDoubt();
    const list = await listInDoubtPayments(ctx());
    expect(list).toEqual(
      expect.arrayContaining([
        {
          paymentId: c.paymentId,
          orderId: c.orderId,
          kind: 'charge',
          amountCents: 3300,
          startedAt: expect.any(String),
          outcome: expect.stringContaining('connection broke'),
        },
        {
          paymentId: r.paymentId,
          orderId: r.orderId,
          kind: 'refund',
          amountCents: -3300,
          startedAt: expect.any(String),
          outcome: expect.stringContaining('connection broke'),
        },
      ]),
    );
    expect(JSON.stringify(list)).not.toContain(TOKEN);
    await resolvePayment(ctx(), c.paymentId, false);
    await resolvePayment(ctx(), r.paymentId, false);
    expect(await listInDoubtPayments(ctx())).toEqual([]);
  });
});

describe('resolvePayment', () => {
  test('charge succeeded: the order becomes charged (chargedAt set), and can then be fulfilled or refunded', async () => {
    const { orderId, paymentId } = await chargeInDoubt();
    const res = await resolvePayment(ctx(), paymentId, true);
    expect(res.payment).toMatchObject({ paymentId, orderId, kind: 'charge', state: 'succeeded', outcome: 'resolved by staff: succeeded' });
    expect(res.order).toMatchObject({ id: orderId, status: 'charged' });
    expect(res.order.chargedAt).not.toBeNull();
    expect(JSON.stringify(res)).not.toContain(TOKEN);
    expect(await stored(paymentId)).toMatchObject({ state: 'succeeded', status: 'charged', operation: null });
    // The cancel now refunds the charge staff confirmed, with its stored card token.
    const before = charge.calls.length;
    const cancel = await app.call('POST', `/orders/${orderId}/cancel`, { staff: true });
    expect(cancel).toMatchObject({ status: 200, body: { refundedCents: 3300, order: { status: 'cancelled' } } });
    expect(charge.calls.slice(before)).toEqual([{ cardToken: TOKEN, amountCents: -3300 }]);
  });

  test('charge failed: the order stays pending and can be charged again', async () => {
    const { orderId, paymentId } = await chargeInDoubt();
    const res = await resolvePayment(ctx(), paymentId, false);
    expect(res.payment).toMatchObject({ state: 'failed', outcome: 'resolved by staff: failed' });
    expect(res.order.status).toBe('pending');
    expect(await stored(paymentId)).toMatchObject({ state: 'failed', status: 'pending', charged_at: null });
    const again = await app.call('POST', `/orders/${orderId}/charge`, { body: { cardToken: TOKEN } });
    expect(again).toMatchObject({ status: 200, body: { order: { status: 'charged' } } });
  });

  test('refund succeeded: the order becomes cancelled', async () => {
    const { orderId, paymentId } = await refundInDoubt();
    const res = await resolvePayment(ctx(), paymentId, true);
    expect(res.payment).toMatchObject({ kind: 'refund', amountCents: -3300, state: 'succeeded' });
    expect(res.order).toMatchObject({ id: orderId, status: 'cancelled' });
    expect(res.order.cancelledAt).not.toBeNull();
    expect(await stored(paymentId)).toMatchObject({ state: 'succeeded', status: 'cancelled' });
    // Cancelling again refunds nothing more.
    const before = charge.calls.length;
    expect((await app.call('POST', `/orders/${orderId}/cancel`, { staff: true })).body.refundedCents).toBe(0);
    expect(charge.calls.length).toBe(before);
  });

  test('refund failed: the order stays charged, and a new cancel refunds it', async () => {
    const { orderId, paymentId } = await refundInDoubt();
    const res = await resolvePayment(ctx(), paymentId, false);
    expect(res.order.status).toBe('charged');
    expect(await stored(paymentId)).toMatchObject({ state: 'failed', status: 'charged' });
    const cancel = await app.call('POST', `/orders/${orderId}/cancel`, { staff: true });
    expect(cancel).toMatchObject({ status: 200, body: { refundedCents: 3300 } });
  });

  test('a payment that is not in doubt, an unknown one and a malformed ID are refused without changes', async () => {
    const orderId = await pendingOrder();
    expect((await app.call('POST', `/orders/${orderId}/charge`, { body: { cardToken: TOKEN } })).status).toBe(200);
    const paymentId = await paymentOf(orderId, 'charge');
    expect(await codeOf(resolvePayment(ctx(), paymentId, false))).toBe('payment_not_in_doubt');
    expect(await stored(paymentId)).toMatchObject({ state: 'succeeded', status: 'charged' });
    expect(await codeOf(resolvePayment(ctx(), '0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10', true))).toBe('payment_not_found');
    expect(await codeOf(resolvePayment(ctx(), 'not-a-uuid', true))).toBe('payment_not_found');
    expect(await codeOf(resolvePayment(ctx(), "'; drop table payments; --", true))).toBe('payment_not_found');
    expect(await codeOf(resolvePayment(ctx(), 'x'.repeat(10_000), true))).toBe('payment_not_found');
  });

  test('two staff resolving the same payment at once: exactly one wins, the other gets payment_not_in_doubt', async () => {
    const { orderId, paymentId } = await chargeInDoubt();
    const results = await Promise.allSettled([resolvePayment(ctx(), paymentId, true), resolvePayment(ctx(), paymentId, false)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0].reason as AppError).code).toBe('payment_not_in_doubt');
    const winner = won[0].value;
    // What is stored is exactly what the winner recorded.
    expect(await stored(paymentId)).toMatchObject({ state: winner.payment.state, status: winner.order.status, order_id: orderId });
  });
});

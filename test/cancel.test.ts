import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { storedOrder, storedPayments } from './support/state.js';
import { resolvePayment } from '../src/domain/in-doubt.js';

let fake: FakeChargeService;
let fulfillment: FakeFulfillmentService;
let app: TestApp;

beforeAll(async () => {
  fake = await FakeChargeService.start();
  fulfillment = await FakeFulfillmentService.start();
  app = await startTestApp({ chargeUrl: fake.url, fulfillmentUrl: fulfillment.url, env: { UPSTREAM_TIMEOUT_MS: '400' } });
});
afterAll(async () => {
  fake.releaseHung();
  await app?.stop();
  await fake?.stop();
  await fulfillment?.stop();
});
afterEach(() => {
  fake.default = { status: 201 };
  fake.releaseHung();
});

async function pendingOrder(body: Record<string, unknown> = {}): Promise<string> {
  const res = await app.call('POST', '/orders', { body: newOrder(body) });
  expect(res.status).toBe(201);
  return res.body.order.id;
}

async function chargedOrder(cardToken = 'tok_charged', body: Record<string, unknown> = {}): Promise<string> {
  const id = await pendingOrder(body);
  expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken } })).status).toBe(200);
  return id;
}

const cancel = (id: string, body?: unknown) => app.call('POST', `/orders/${id}/cancel`, { staff: true, body });
const refundsSent = (from: number) => fake.calls.slice(from).filter((c) => c.amountCents < 0);

describe('cancelling', () => {
  test('when a pending order is cancelled, then it is cancelled with its reason and nothing is refunded', async () => {
    const id = await pendingOrder();
    const before = fake.calls.length;
    const res = await cancel(id, { reason: 'customer changed their mind' });
    expect(res.status).toBe(200);
    expect(res.body.refundedCents).toBe(0);
    expect(res.body.order).toMatchObject({ status: 'cancelled', cancelReason: 'customer changed their mind' });
    expect(res.body.order.cancelledAt).not.toBeNull();
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, id)).toMatchObject({
      status: 'cancelled',
      cancel_reason: 'customer changed their mind',
      operation: null,
    });
  });

  test('when a charged order is cancelled, then the stored card is refunded the full total first', async () => {
    const id = await chargedOrder('tok_refund_me');
    const before = fake.calls.length;
    const res = await cancel(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ refundedCents: 3300, order: { status: 'cancelled', cancelReason: null } });
    expect(JSON.stringify(res.body)).not.toContain('tok_refund_me');
    expect(fake.calls.slice(before)).toEqual([{ cardToken: 'tok_refund_me', amountCents: -3300 }]);
    expect(await storedPayments(app, id)).toMatchObject([
      { kind: 'charge', amount_cents: '3300', state: 'succeeded' },
      { kind: 'refund', amount_cents: '-3300', state: 'succeeded', card_token: 'tok_refund_me' },
    ]);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'cancelled', operation: null });
  });

  test('when a charged order with a zero total is cancelled, then no refund call is made', async () => {
    const id = await chargedOrder('tok_zero', { lineItems: [{ description: 'Gift', priceCents: 0, quantity: 1 }] });
    const before = fake.calls.length;
    const res = await cancel(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ refundedCents: 0, order: { status: 'cancelled' } });
    expect(fake.calls.length).toBe(before);
  });

  test('when a cancelled order is cancelled again, then 200 with refundedCents 0 and nothing is refunded again', async () => {
    const id = await chargedOrder();
    expect((await cancel(id)).status).toBe(200);
    const before = fake.calls.length;
    const again = await cancel(id, { reason: 'again' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ refundedCents: 0, order: { status: 'cancelled', cancelReason: null } });
    expect(fake.calls.length).toBe(before);
    expect((await storedPayments(app, id)).filter((p) => p.kind === 'refund')).toHaveLength(1);
  });

  test('when a fulfilled order is cancelled, then 409 order_fulfilled and nothing is refunded', async () => {
    const id = await chargedOrder();
    expect((await app.call('POST', `/orders/${id}/fulfill`, { staff: true })).status).toBe(200);
    const before = fake.calls.length;
    const res = await cancel(id);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('order_fulfilled');
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'fulfilled' });
  });

  test('when the order is unknown, then 404 order_not_found', async () => {
    const res = await cancel('nope');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('order_not_found');
  });

  test('when there is no valid staff token, then 401 and nothing is done', async () => {
    const id = await chargedOrder();
    const before = fake.calls.length;
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic dGVzdDp0ZXN0' }] as Record<string, string>[]) {
      const res = await app.call('POST', `/orders/${id}/cancel`, { headers });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthorized');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged' });
  });

  test('when the reason is too long or the body has unknown fields, then 400 and nothing is done', async () => {
    const id = await pendingOrder();
    for (const body of [{ reason: 'x'.repeat(501) }, { reason: 'ok', refund: false }, { reason: 7 }]) {
      const res = await cancel(id, body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    expect(await storedOrder(app, id)).toMatchObject({ status: 'pending' });
  });

  test('when an order is cancelled, then it can be neither charged nor fulfilled', async () => {
    const id = await pendingOrder();
    expect((await cancel(id)).status).toBe(200);
    const charge = await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok' } });
    expect(charge.status).toBe(409);
    expect(charge.body.code).toBe('order_not_pending');
    const fulfill = await app.call('POST', `/orders/${id}/fulfill`, { staff: true });
    expect(fulfill.status).toBe(409);
    expect(fulfill.body.code).toBe('order_cancelled');
  });
});

describe('when the refund fails', () => {
  test('when the charge service fails the refund, then 502 charge_failed, the order stays charged, and a retry refunds once', async () => {
    const id = await chargedOrder('tok_retry');
    const before = fake.calls.length;
    fake.next({ status: 500 });
    const failed = await cancel(id);
    expect(failed.status).toBe(502);
    expect(failed.body.code).toBe('charge_failed');
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged', operation: null });

    fake.next({ status: 402 });
    const declined = await cancel(id);
    expect(declined.status).toBe(502);
    expect(declined.body.code).toBe('charge_failed');

    const retry = await cancel(id);
    expect(retry.status).toBe(200);
    expect(retry.body.refundedCents).toBe(3300);
    expect(refundsSent(before)).toEqual([
      { cardToken: 'tok_retry', amountCents: -3300 },
      { cardToken: 'tok_retry', amountCents: -3300 },
      { cardToken: 'tok_retry', amountCents: -3300 },
    ]);
    const refunds = (await storedPayments(app, id)).filter((p) => p.kind === 'refund');
    expect(refunds.map((p) => p.state)).toEqual(['failed', 'failed', 'succeeded']);
  });

  test('when the refund times out, then 504 upstream_timeout, it is in doubt, and cancel and fulfill are refused until resolved', async () => {
    const id = await chargedOrder();
    fake.next({ hang: true });
    const res = await cancel(id);
    expect(res.status).toBe(504);
    expect(res.body.code).toBe('upstream_timeout');
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged', operation: null });
    expect((await storedPayments(app, id)).map((p) => p.state)).toEqual(['succeeded', 'in_doubt']);
    const before = fake.calls.length;
    const again = await cancel(id);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('payment_in_doubt');
    const fulfill = await app.call('POST', `/orders/${id}/fulfill`, { staff: true });
    expect(fulfill.status).toBe(409);
    expect(fulfill.body.code).toBe('payment_in_doubt');
    expect(fake.calls.length).toBe(before);
  });

  test('when the connection breaks after the refund was sent, then 502 payment_in_doubt and the order stays charged', async () => {
    const id = await chargedOrder();
    fake.next({ reset: true });
    const res = await cancel(id);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('payment_in_doubt');
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged' });
  });

  test('when an in-doubt refund is resolved as succeeded, then the order is cancelled with the reason given to the cancel', async () => {
    const id = await chargedOrder();
    fake.next({ reset: true });
    expect((await cancel(id, { reason: 'out of stock' })).status).toBe(502);
    const refund = (await storedPayments(app, id)).find((p) => p.kind === 'refund');
    const resolved = await resolvePayment(app.rt.context(), refund!.id, true);
    expect(resolved.order).toMatchObject({ status: 'cancelled', cancelReason: 'out of stock' });
    expect(await storedOrder(app, id)).toMatchObject({ status: 'cancelled', cancel_reason: 'out of stock' });
  });
});

describe('concurrency', () => {
  test('when five cancels of a charged order arrive at once, then exactly one refund is made', async () => {
    const id = await chargedOrder('tok_five');
    const before = fake.calls.length;
    fake.default = { status: 201, delayMs: 20 };
    const answers = await Promise.all(Array.from({ length: 5 }, () => cancel(id)));
    const refunded = answers.filter((a) => a.status === 200 && a.body.refundedCents === 3300);
    expect(refunded).toHaveLength(1);
    for (const a of answers) {
      if (a.status === 200) expect(a.body.order.status).toBe('cancelled');
      else expect(a.body.code).toBe('operation_in_progress');
    }
    expect(refundsSent(before)).toEqual([{ cardToken: 'tok_five', amountCents: -3300 }]);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'cancelled' });
  });

  test('when cancels race charges of pending orders, then no cancelled order keeps money and none is refunded twice', async () => {
    fake.default = { status: 201, delayMs: 2 };
    const ids = await Promise.all(Array.from({ length: 20 }, () => pendingOrder()));
    await Promise.all(
      ids.flatMap((id, i) => {
        const charge = () => app.call('POST', `/orders/${id}/charge`, { body: { cardToken: `tok_race_${i}` } });
        const cancelIt = () => cancel(id);
        return i % 2 === 0 ? [charge(), cancelIt()] : [cancelIt(), charge()];
      }),
    );
    for (const id of ids) {
      const order = await storedOrder(app, id);
      const payments = await storedPayments(app, id);
      const charged = payments.filter((p) => p.kind === 'charge' && p.state === 'succeeded').length;
      const refunded = payments.filter((p) => p.kind === 'refund' && p.state === 'succeeded').length;
      expect(charged).toBeLessThanOrEqual(1);
      expect(refunded).toBeLessThanOrEqual(charged);
      if (order?.status === 'cancelled') expect(refunded).toBe(charged);
      else expect(order?.status).toBe('charged');
    }
  });
});

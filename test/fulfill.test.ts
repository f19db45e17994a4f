import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { storedOrder, storedPayments } from './support/state.js';

let charge: FakeChargeService;
let fake: FakeFulfillmentService;
let app: TestApp;

beforeAll(async () => {
  charge = await FakeChargeService.start();
  fake = await FakeFulfillmentService.start();
  app = await startTestApp({ chargeUrl: charge.url, fulfillmentUrl: fake.url, env: { UPSTREAM_TIMEOUT_MS: '400' } });
});
afterAll(async () => {
  await app?.stop();
  await charge?.stop();
  await fake?.stop();
});
afterEach(() => {
  fake.heal();
  charge.default = { status: 201 };
});

const THREE_ITEMS = [
  { description: 'Green tea, 100 g', priceCents: 650, quantity: 2 },
  { description: 'Teapot', priceCents: 3500, quantity: 1 },
  { description: 'Gift wrap', priceCents: 0, quantity: 1 },
];

async function orderIn(status: 'pending' | 'charged' | 'cancelled'): Promise<string> {
  const res = await app.call('POST', '/orders', { body: newOrder({ lineItems: THREE_ITEMS }) });
  const id = res.body.order.id as string;
  if (status === 'charged') expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_f' } })).status).toBe(200);
  if (status === 'cancelled') expect((await app.call('POST', `/orders/${id}/cancel`, { staff: true })).status).toBe(200);
  return id;
}

const fulfill = (id: string) => app.call('POST', `/orders/${id}/fulfill`, { staff: true });
const callsFor = (id: string) => fake.calls.filter((c) => c.orderID === id);

describe('fulfilling', () => {
  test('when a charged order is fulfilled, then every line item is sent once and the order is fulfilled', async () => {
    const id = await orderIn('charged');
    const res = await fulfill(id);
    expect(res.status).toBe(200);
    expect(res.body.order).toMatchObject({ id, status: 'fulfilled' });
    expect(res.body.order.fulfilledAt).not.toBeNull();
    const sent = [...callsFor(id)].sort((a, b) => a.description.localeCompare(b.description));
    expect(sent).toEqual([
      { description: 'Gift wrap', quantity: 1, orderID: id },
      { description: 'Green tea, 100 g', quantity: 2, orderID: id },
      { description: 'Teapot', quantity: 1, orderID: id },
    ]);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'fulfilled', operation: null });
  });

  test('when a fulfilled order is fulfilled again, then 200 and no call is made', async () => {
    const id = await orderIn('charged');
    expect((await fulfill(id)).status).toBe(200);
    const before = fake.calls.length;
    const again = await fulfill(id);
    expect(again.status).toBe(200);
    expect(again.body.order.status).toBe('fulfilled');
    expect(fake.calls.length).toBe(before);
  });

  test.each([
    ['pending', 409, 'order_not_charged'],
    ['cancelled', 409, 'order_cancelled'],
  ] as const)('when the order is %s, then %i %s and no call is made', async (status, code, errorCode) => {
    const id = await orderIn(status);
    const res = await fulfill(id);
    expect(res.status).toBe(code);
    expect(res.body.code).toBe(errorCode);
    expect(callsFor(id)).toEqual([]);
    expect(await storedOrder(app, id)).toMatchObject({ status, operation: null });
  });

  test('when the order is unknown, then 404 order_not_found', async () => {
    const res = await fulfill('unknown-order');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('order_not_found');
  });

  test('when there is no staff token, then 401 and no call is made', async () => {
    const id = await orderIn('charged');
    const res = await app.call('POST', `/orders/${id}/fulfill`);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthorized');
    expect(callsFor(id)).toEqual([]);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged' });
  });
});

describe('when the fulfillment service fails', () => {
  test('when one item fails, then 502 fulfillment_failed naming it, the order stays charged, and a retry fulfills it', async () => {
    const id = await orderIn('charged');
    fake.fail('Teapot', 500);
    const res = await fulfill(id);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('fulfillment_failed');
    expect(res.body.detail).toContain('Teapot');
    expect(res.body.detail).not.toContain('Gift wrap');
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged', operation: null, fulfilled_at: null });
    expect(callsFor(id)).toHaveLength(3);

    fake.heal();
    const retry = await fulfill(id);
    expect(retry.status).toBe(200);
    expect(retry.body.order.status).toBe('fulfilled');
    // The service is idempotent per order and item, so every item is simply sent again.
    expect(callsFor(id)).toHaveLength(6);
  });

  test('when an item times out, then 504 upstream_timeout and the order stays charged', async () => {
    const id = await orderIn('charged');
    fake.fail('Gift wrap', 'hang');
    const res = await fulfill(id);
    expect(res.status).toBe(504);
    expect(res.body.code).toBe('upstream_timeout');
    expect(res.body.detail).toContain('Gift wrap');
    expect(await storedOrder(app, id)).toMatchObject({ status: 'charged', operation: null });
  });

  test('when the fulfillment service cannot be reached, then 502 fulfillment_failed', async () => {
    const down = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: charge.url, fulfillmentUrl: 'http://127.0.0.1:9' });
    try {
      const id = await orderIn('charged');
      const res = await down.call('POST', `/orders/${id}/fulfill`, { staff: true });
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('fulfillment_failed');
      expect(await storedOrder(app, id)).toMatchObject({ status: 'charged' });
    } finally {
      await down.stop();
    }
  });
});

describe('concurrency', () => {
  test('when three fulfills of one order arrive at once, then the items are sent once', async () => {
    const id = await orderIn('charged');
    const answers = await Promise.all([fulfill(id), fulfill(id), fulfill(id)]);
    for (const a of answers) {
      if (a.status !== 200) expect(a.body.code).toBe('operation_in_progress');
    }
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(callsFor(id)).toHaveLength(3);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'fulfilled' });
  });

  test('when fulfills race cancels over many orders, then no order ends both refunded and fulfilled', async () => {
    const ids = await Promise.all(Array.from({ length: 16 }, () => orderIn('charged')));
    await Promise.all(
      ids.flatMap((id, i) => {
        const f = () => fulfill(id);
        const c = () => app.call('POST', `/orders/${id}/cancel`, { staff: true });
        return i % 2 === 0 ? [f(), c()] : [c(), f()];
      }),
    );
    for (const id of ids) {
      const order = await storedOrder(app, id);
      const refunds = (await storedPayments(app, id)).filter((p) => p.kind === 'refund' && p.state === 'succeeded');
      if (order?.status === 'fulfilled') expect(refunds).toHaveLength(0);
      else if (order?.status === 'cancelled') expect(refunds).toHaveLength(1);
      else throw new Error(`order ${id} ended ${order?.status}`);
    }
  });
});

// The problem examples of openapi/order-up.yaml are what frontend developers see in the reference
// and get from `make mock`: each must be the service's own answer. Every example is provoked here
// against the real app (fake upstreams) and compared - status, code, title, detail, and the errors
// of an invalid_request - or is listed below with the reason it cannot be provoked here.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { OpenAPIBackend } from 'openapi-backend';
import { SPEC_PATH } from '../src/http/assets.js';
import { problemFor } from '../src/http/problem.js';
import { newOrder, startTestApp, type Reply, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';

interface Example {
  key: string;
  value: { type: string; title: string; status: number; detail: string; code: string; errors?: { path: string; message: string }[] };
}

/** Every problem example of the spec's shared responses, as `<response>/<example>`. */
async function problemExamples(): Promise<Example[]> {
  const api = new OpenAPIBackend({ definition: SPEC_PATH, quick: true });
  await api.init();
  const spec = api.definition as unknown as {
    components: { responses: Record<string, { content?: Record<string, { examples?: Record<string, { value: Example['value'] }> }> }> };
  };
  const found: Example[] = [];
  for (const [response, def] of Object.entries(spec.components.responses)) {
    for (const [name, example] of Object.entries(def.content?.['application/problem+json']?.examples ?? {})) {
      found.push({ key: `${response}/${name}`, value: example.value });
    }
  }
  return found;
}

let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
let app: TestApp;
/** The same database, no room in the charge queue. */
let full: TestApp;

beforeAll(async () => {
  [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
  app = await startTestApp({ chargeUrl: charge.url, fulfillmentUrl: fulfillment.url, env: { UPSTREAM_TIMEOUT_MS: '800' } });
  full = await startTestApp({
    databaseUrl: app.rt.databaseUrl,
    chargeUrl: charge.url,
    fulfillmentUrl: fulfillment.url,
    env: { ORDER_UP_CHARGE_QUEUE_MAX: '0', UPSTREAM_TIMEOUT_MS: '800' },
  });
});
afterAll(async () => {
  charge?.releaseHung();
  await full?.stop();
  await app?.stop();
  await Promise.all([charge?.stop(), fulfillment?.stop()]);
});

const create = async (body: Record<string, unknown> = {}) => {
  const res = await app.call('POST', '/orders', { body: newOrder(body) });
  expect(res.status).toBe(201);
  return res.body.order.id as string;
};
const pay = (id: string) => app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_examples' } });
const cancel = (id: string) => app.call('POST', `/orders/${id}/cancel`, { staff: true });
const fulfill = (id: string) => app.call('POST', `/orders/${id}/fulfill`, { staff: true });
const charged = async (body: Record<string, unknown> = {}) => {
  const id = await create(body);
  expect((await pay(id)).status).toBe(200);
  return id;
};

/** While `during` runs, `first` is under way on the server (its upstream call has arrived). */
async function whileUnderWay(first: Promise<Reply>, arrived: () => Promise<void>, during: () => Promise<Reply>): Promise<Reply> {
  await arrived();
  const reply = await during();
  await first;
  return reply;
}

const PROVOKE: Record<string, () => Promise<Reply>> = {
  'InvalidRequest/invalid_request': () => app.call('GET', '/orders?limit=501', { staff: true }),
  'CreateOrderInvalid/invalid_request': () =>
    app.call('POST', '/orders', {
      body: { customerEmail: 'ada at example.com', lineItems: [{ description: 'Blue mug', priceCents: 1000, quantity: 0 }] },
    }),
  'CreateOrderInvalid/duplicate_description': () =>
    app.call('POST', '/orders', {
      body: newOrder({
        lineItems: [
          { description: 'Blue mug', priceCents: 1000, quantity: 1 },
          { description: 'Blue mug', priceCents: 1000, quantity: 1 },
        ],
      }),
    }),
  'CreateOrderInvalid/invalid_total': () =>
    app.call('POST', '/orders', {
      body: newOrder({
        lineItems: [
          { description: 'Blue mug', priceCents: 1000, quantity: 1 },
          { description: 'Voucher', priceCents: -1500, quantity: 1 },
        ],
      }),
    }),
  'Unauthorized/unauthorized': () => app.call('GET', '/orders'),
  'PaymentDeclined/payment_declined': async () => {
    const id = await create();
    charge.next({ status: 402 });
    return pay(id);
  },
  'OrderNotFound/order_not_found': () => app.call('GET', '/orders/3q2-7wEBpZf0aWk1R9cTnA'),
  'OrderExists/order_exists': async () => {
    await create({ id: 'web-2026-11-25-0001' });
    return app.call('POST', '/orders', { body: newOrder({ id: 'web-2026-11-25-0001' }) });
  },
  'ChargeConflict/order_not_pending': async () => pay(await charged()),
  'ChargeConflict/operation_in_progress': async () => {
    const id = await create();
    const before = charge.calls.length;
    charge.next({ status: 201, delayMs: 400 });
    return whileUnderWay(
      pay(id),
      () => charge.received(before + 1),
      () => pay(id),
    );
  },
  'ChargeConflict/payment_in_doubt': async () => {
    const id = await create();
    charge.next({ reset: true });
    expect((await pay(id)).status).toBe(502);
    return pay(id);
  },
  'CancelConflict/order_fulfilled': async () => {
    const id = await charged();
    expect((await fulfill(id)).status).toBe(200);
    return cancel(id);
  },
  'CancelConflict/operation_in_progress': async () => {
    const id = await charged({ lineItems: [{ description: 'Slow lamp', priceCents: 1000, quantity: 1 }] });
    fulfillment.fail('Slow lamp', 'hang');
    const before = fulfillment.calls.length;
    try {
      return await whileUnderWay(
        fulfill(id),
        async () => {
          while (fulfillment.calls.length === before) await new Promise((r) => setTimeout(r, 10));
        },
        () => cancel(id),
      );
    } finally {
      fulfillment.heal();
    }
  },
  'CancelConflict/payment_in_doubt': async () => {
    const id = await create();
    charge.next({ reset: true });
    expect((await pay(id)).status).toBe(502);
    return cancel(id);
  },
  'FulfillConflict/order_not_charged': async () => fulfill(await create()),
  'FulfillConflict/order_cancelled': async () => {
    const id = await create();
    expect((await cancel(id)).status).toBe(200);
    return fulfill(id);
  },
  'FulfillConflict/operation_in_progress': async () => {
    const id = await charged();
    const before = charge.calls.length;
    charge.next({ status: 201, delayMs: 400 });
    return whileUnderWay(
      cancel(id),
      () => charge.received(before + 1),
      () => fulfill(id),
    );
  },
  'FulfillConflict/payment_in_doubt': async () => {
    const id = await charged();
    charge.next({ reset: true });
    expect((await cancel(id)).status).toBe(502);
    return fulfill(id);
  },
  'PayloadTooLarge/payload_too_large': () => app.call('POST', '/orders', { body: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }) }),
  'UnsupportedMediaType/unsupported_media_type': () =>
    app.call('POST', '/orders', { body: 'customerEmail=ada', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
  'ChargeServiceFailed/charge_failed': async () => {
    const id = await create();
    charge.next({ status: 500 });
    return pay(id);
  },
  'ChargeServiceFailed/payment_in_doubt': async () => {
    const id = await create();
    charge.next({ reset: true });
    return pay(id);
  },
  'FulfillmentFailed/fulfillment_failed': async () => {
    const id = await charged({ lineItems: [{ description: 'Blue mug', priceCents: 1000, quantity: 2 }] });
    fulfillment.fail('Blue mug', 500);
    try {
      return await fulfill(id);
    } finally {
      fulfillment.heal();
    }
  },
  'ChargeQueueFull/charge_queue_full': async () => {
    const [busy, next] = [await create(), await create()];
    const before = charge.calls.length;
    charge.next({ status: 201, delayMs: 400 });
    return whileUnderWay(
      full.call('POST', `/orders/${busy}/charge`, { body: { cardToken: 'tok_busy' } }),
      () => charge.received(before + 1),
      () => full.call('POST', `/orders/${next}/charge`, { body: { cardToken: 'tok_next' } }),
    );
  },
  'ChargeConflict/idempotency_key_in_use': () => keyInUse(),
  'OrderExists/idempotency_key_in_use': () => keyInUse(),
  'CancelConflict/idempotency_key_in_use': () => keyInUse(),
  'FulfillConflict/idempotency_key_in_use': () => keyInUse(),
  'IdempotencyKeyReused/idempotency_key_reused': async () => {
    const headers = { 'idempotency-key': `reused-${Date.now()}` };
    expect((await app.call('POST', '/orders', { body: newOrder(), headers })).status).toBe(201);
    return app.call('POST', '/orders', { body: newOrder({ customerEmail: 'other@example.com' }), headers });
  },
  'PaymentNotFound/payment_not_found': () =>
    app.call('POST', '/payments/6f1c1b9e-2f57-4b0e-9d1c-0c2f2d7b8a11/resolve', { staff: true, body: { outcome: 'failed' } }),
  'ResolveConflict/payment_not_in_doubt': async () => {
    const id = await charged();
    const events = await app.call('GET', `/orders/${id}/events`, { staff: true });
    const paymentId = events.body.events.find((e: { type: string }) => e.type === 'charge.succeeded').data.paymentId as string;
    return app.call('POST', `/payments/${paymentId}/resolve`, { staff: true, body: { outcome: 'failed' } });
  },
  'UpstreamTimeout/upstream_timeout': async () => {
    const id = await create();
    charge.next({ hang: true });
    const reply = await pay(id);
    charge.releaseHung();
    return reply;
  },
};

/** Examples this test cannot provoke, and why; their words are still the service's (see the source named). */
/** The same Idempotency-Key again while its first request still runs (the same answer on every endpoint). */
async function keyInUse() {
  const id = await create();
  const before = charge.calls.length;
  const headers = { 'idempotency-key': `in-use-${id}` };
  charge.next({ status: 201, delayMs: 400 });
  return whileUnderWay(
    app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_key' }, headers }),
    () => charge.received(before + 1),
    () => app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_key' }, headers }),
  );
}

const NOT_PROVOKED: Record<string, string> = {
  'ChargeQueueFull/overloaded':
    'needs more requests in progress than ORDER_UP_MAX_IN_FLIGHT (test/robustness.test.ts); intake() in src/http/intake.ts',
  'Overloaded/overloaded': 'as above',
  'Unavailable/overloaded': 'as above',
  'Unavailable/not_ready': 'needs the database to go away or freeze (test/robustness.test.ts); problemFor() in src/http/problem.ts',
  'InternalError/internal_error': 'a server bug; compared with what problemFor() answers for any unexpected error below',
  'ChargeQueueFull/not_ready': 'needs the process to lose its database lease (test/lease.test.ts); reconnecting() in src/domain/errors.ts',
  'NotReady/not_ready': 'needs the database to go away (test/http-edges.test.ts provokes it); getReady in src/http/handlers.ts',
};

/** Payment IDs differ per run. */
const sameIds = (text: string) => text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<payment id>');

test('when a documented problem example is provoked, then the service answers it word for word', async () => {
  const examples = await problemExamples();
  expect(examples.length).toBeGreaterThan(20);
  // Every example is either provoked or explained.
  expect(examples.map((e) => e.key).filter((k) => !(k in PROVOKE) && !(k in NOT_PROVOKED))).toEqual([]);
  // At least these, the ones a frontend meets first.
  const provokedCodes = new Set(examples.filter((e) => e.key in PROVOKE).map((e) => e.value.code));
  for (const code of ['order_not_found', 'order_not_pending', 'unauthorized', 'invalid_total', 'order_exists', 'payment_declined'])
    expect(provokedCodes).toContain(code);

  const documented: Record<string, unknown> = {};
  const answered: Record<string, unknown> = {};
  for (const { key, value } of examples.filter((e) => e.key in PROVOKE)) {
    const reply = await PROVOKE[key]();
    const pick = (p: Example['value']) => ({
      status: p.status,
      code: p.code,
      title: p.title,
      detail: sameIds(p.detail),
      ...(p.errors ? { errors: p.errors } : {}),
    });
    documented[key] = pick(value);
    answered[key] = pick(reply.body);
  }
  expect(documented).toEqual(answered);
}, 60_000);

test('when the service answers an unexpected error, then it says what the internal_error example says', async () => {
  const example = (await problemExamples()).find((e) => e.key === 'InternalError/internal_error')!.value;
  const { problem } = problemFor(new Error('boom'));
  expect({ status: example.status, title: example.title, detail: example.detail }).toEqual({
    status: problem.status,
    title: problem.title,
    detail: problem.detail,
  });
});

// Contract tests: what order-up answers and what it sends must match the OpenAPI documents.
//
// (a) The real app (in-process, fresh database, fake upstreams) runs behind
//     `prism proxy openapi/order-up.yaml <app> --errors`. Prism validates every response against
//     the spec (status, headers, body); a violation turns into a Prism error answer and/or an
//     `sl-violations` header, and `expectAnswer` fails on either. Two proxies:
//       - `strict` also validates requests (the default): everything a well-behaved frontend sends
//         goes through it, proving the spec accepts what the app accepts;
//       - `lenient` runs with `--validate-request=false`: deliberately invalid requests (which
//         the strict proxy answers with its own 422, never reaching the app) go through it, so the
//         app's 400/413/415 answers are still checked against the spec. Each such request is also
//         sent through the strict proxy, which must refuse it (422): the spec and the app agree on
//         what is invalid.
//     A few answers cannot pass Prism at all (Prism refuses them itself: unknown paths or methods,
//     malformed JSON, a request without any Authorization header); those are sent to the app
//     directly. Every problem+json body, wherever it came from, is also validated with Ajv2020
//     against #/components/schemas/Problem.
// (b) order-up's own ChargeService and FulfillmentService clients, and the whole app, run against
//     `prism mock` of openapi/charge-service.yaml and openapi/fulfillment-service.yaml with
//     `--errors`: a request that breaks an upstream contract gets Prism's 4xx and the call fails.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { OpenAPIBackend } from 'openapi-backend';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { call, newOrder, startTestApp, type Reply, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { startPrism, type RunningPrism } from './support/prism.js';
import { freshDatabaseUrl } from './support/test-db.js';
import { addFormats } from '../src/http/spec.js';
import { SPEC_PATH } from '../src/http/assets.js';
import { ChargeService } from '../src/upstream/charge-service.js';
import { ChargeLock } from '../src/upstream/charge-lock.js';
import { FulfillmentService } from '../src/upstream/fulfillment-service.js';

const UPSTREAM_TIMEOUT_MS = 800;

let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
/** The app under test: fake upstreams, a short upstream timeout. */
let app: TestApp;
/** A second instance on the same database where nothing may wait for the charge service: ORDER_UP_CHARGE_QUEUE_MAX=0. */
let queueFullApp: TestApp;
/** A third instance on the same database whose upstreams are the Prism mocks of (b). */
let mockedApp: TestApp;
let strict: RunningPrism;
let lenient: RunningPrism;
let lenientQueueFull: RunningPrism;
let chargeMock: RunningPrism;
let fulfillmentMock: RunningPrism;
/** A proxy in front of a deliberately wrong server: proves that violations do fail expectAnswer. */
let teethProxy: RunningPrism;
let wrongServer: http.Server;
let validateProblem: ValidateFunction;
/** Every Prism started, so afterAll stops them all even when beforeAll failed halfway. */
const started: RunningPrism[] = [];
const prism = (args: string[]) =>
  // Six Prisms start at once and each takes seconds of CPU: on a busy 2-core machine that is more than 30 s.
  startPrism(args, { readyTimeoutMs: 120_000 }).then((p) => {
    started.push(p);
    return p;
  });

beforeAll(async () => {
  // Prism takes a few seconds to start: start all six at once, while the apps start.
  const mocks = Promise.all([prism(['mock', 'openapi/charge-service.yaml']), prism(['mock', 'openapi/fulfillment-service.yaml'])]);
  mocks.catch(() => undefined); // awaited below; this only keeps an early failure from being "unhandled" meanwhile
  [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
  app = await startTestApp({
    chargeUrl: charge.url,
    fulfillmentUrl: fulfillment.url,
    env: { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
  });
  queueFullApp = await startTestApp({
    databaseUrl: app.rt.databaseUrl,
    chargeUrl: charge.url,
    fulfillmentUrl: fulfillment.url,
    // A long timeout: its one charge in flight must stay in flight while the test provokes the 503s.
    env: { ORDER_UP_CHARGE_QUEUE_MAX: '0', UPSTREAM_TIMEOUT_MS: '30000' },
  });
  wrongServer = await startWrongServer();
  const proxies = Promise.all([
    prism(['proxy', 'openapi/order-up.yaml', `http://127.0.0.1:${(wrongServer.address() as AddressInfo).port}`]),
    prism(['proxy', 'openapi/order-up.yaml', app.url]),
    prism(['proxy', 'openapi/order-up.yaml', app.url, '--validate-request=false']),
    // Without request validation only because the charge sent through it is valid anyway (the
    // strict proxy checks the same request against the main instance).
    prism(['proxy', 'openapi/order-up.yaml', queueFullApp.url, '--validate-request=false']),
  ]);
  proxies.catch(() => undefined);
  [chargeMock, fulfillmentMock] = await mocks;
  mockedApp = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: chargeMock.url, fulfillmentUrl: fulfillmentMock.url });
  [teethProxy, strict, lenient, lenientQueueFull] = await proxies;

  // The Problem schema, dereferenced by openapi-backend's parser (the same one the app uses).
  const api = new OpenAPIBackend({ definition: SPEC_PATH, quick: true });
  await api.init();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  validateProblem = ajv.compile((api.definition as { components: { schemas: Record<string, object> } }).components.schemas.Problem);
}, 150_000);

afterAll(async () => {
  await Promise.allSettled(started.map((p) => p.stop()));
  if (wrongServer) {
    wrongServer.closeAllConnections();
    await new Promise((r) => wrongServer.close(r));
  }
  await mockedApp?.stop();
  await queueFullApp?.stop();
  await app?.stop();
  await Promise.all([charge?.stop(), fulfillment?.stop()]);
});

type CallOpts = { body?: unknown; staff?: boolean; headers?: Record<string, string> };
const via = (prism: () => RunningPrism) => (method: string, path: string, opts?: CallOpts) => call(prism().url, method, path, opts);
const send = via(() => strict);
const sendInvalid = via(() => lenient);

function describeReply(r: Reply): string {
  const violations = r.headers.get('sl-violations');
  return `HTTP ${r.status}\n${violations ? `sl-violations: ${violations}\n` : ''}${JSON.stringify(r.body, null, 2)}`;
}

/**
 * The answer has this status (and, for an error, this problem `code`), Prism found no violation
 * of the spec, and a problem body is a valid Problem whose `status` and `type` fit.
 */
function expectAnswer(r: Reply, status: number, code?: string): void {
  const problems: string[] = [];
  if (r.status !== status) problems.push(`expected HTTP ${status}`);
  if (r.headers.get('sl-violations')) problems.push('Prism reported contract violations');
  if (!r.headers.get('x-request-id')) problems.push('no X-Request-Id header');
  if (status >= 400) problems.push(...problemShape(r, code));
  if (problems.length > 0) throw new Error(`${problems.join('; ')}; got:\n${describeReply(r)}`);
}

function problemShape(r: Reply, code?: string): string[] {
  const out: string[] = [];
  if (!/^application\/problem\+json\b/.test(r.headers.get('content-type') ?? ''))
    out.push(`content-type is ${r.headers.get('content-type')}`);
  if (!validateProblem(r.body)) out.push(`not a Problem: ${JSON.stringify(validateProblem.errors)}`);
  const body = r.body as { code?: string; status?: number; type?: string };
  if (code !== undefined && body?.code !== code) out.push(`expected code ${code}`);
  if (body?.status !== r.status) out.push('body.status differs from the HTTP status');
  if (body?.type !== `https://order-up.example/problems/${body?.code}`) out.push('type is not https://order-up.example/problems/<code>');
  return out;
}

/** Prism itself refused the request as breaking the spec (the strict proxy's answer to an invalid request). */
function expectPrismRefusal(r: Reply): void {
  if (r.status !== 422 || !String((r.body as { type?: string })?.type ?? '').includes('stoplight.io/prism/errors#UNPROCESSABLE_ENTITY')) {
    throw new Error(`expected the strict proxy to refuse the request as invalid (422); got:\n${describeReply(r)}`);
  }
}

let seq = 0;
const uniqueId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(seq += 1)}`;

async function createdOrder(overrides: Record<string, unknown> = {}): Promise<string> {
  const r = await send('POST', '/orders', { body: newOrder(overrides) });
  expectAnswer(r, 201);
  return r.body.order.id as string;
}

async function chargedOrder(overrides: Record<string, unknown> = {}): Promise<string> {
  const id = await createdOrder(overrides);
  expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 200);
  return id;
}

/**
 * Answers GET /orders/{id} wrongly in one way per id, to show that each kind of contract violation
 * reaches expectAnswer through the proxy (and is not silently let through).
 */
async function startWrongServer(): Promise<http.Server> {
  const order = {
    id: 'x',
    customerEmail: 'a@b',
    lineItems: [{ description: 'Tea', priceCents: 1, quantity: 1 }],
    status: 'pending',
    totalCents: 1,
    createdAt: '2026-11-25T10:00:00.000Z',
    updatedAt: '2026-11-25T10:00:00.000Z',
    chargedAt: null,
    fulfilledAt: null,
    cancelledAt: null,
    cancelReason: null,
    payment: null,
  };
  const problem = {
    type: 'https://order-up.example/problems/order_not_found',
    title: 'Order not found',
    status: 404,
    detail: 'none',
    code: 'order_not_found',
  };
  const answers: Record<string, [number, Record<string, string>, unknown]> = {
    fine: [200, { 'x-request-id': 'r1', 'content-type': 'application/json' }, { order }],
    'missing-field': [200, { 'x-request-id': 'r1', 'content-type': 'application/json' }, { order: { ...order, totalCents: undefined } }],
    'unknown-field': [200, { 'x-request-id': 'r1', 'content-type': 'application/json' }, { order: { ...order, cardToken: 'tok' } }],
    'wrong-status-value': [200, { 'x-request-id': 'r1', 'content-type': 'application/json' }, { order: { ...order, status: 'shipped' } }],
    'no-request-id': [200, { 'content-type': 'application/json' }, { order }],
    'bad-problem-code': [404, { 'x-request-id': 'r1', 'content-type': 'application/problem+json' }, { ...problem, code: 'no_such_order' }],
    'problem-as-json': [404, { 'x-request-id': 'r1', 'content-type': 'application/json' }, problem],
    'undocumented-status': [409, { 'x-request-id': 'r1', 'content-type': 'application/problem+json' }, { ...problem, status: 409 }],
  };
  const server = http.createServer((req, res) => {
    const [status, headers, body] = answers[String(req.url).split('/').pop() ?? ''] ?? [500, {}, {}];
    res.writeHead(status, headers).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('the harness', () => {
  test('a response that breaks the spec fails expectAnswer', async () => {
    const ask = (what: string) => call(teethProxy.url, 'GET', `/orders/${what}`);
    expectAnswer(await ask('fine'), 200);
    for (const [what, status] of [
      ['missing-field', 200],
      ['unknown-field', 200],
      ['wrong-status-value', 200],
      ['no-request-id', 200],
      ['bad-problem-code', 404],
      ['problem-as-json', 404],
      ['undocumented-status', 409],
    ] as const) {
      const r = await ask(what);
      let error = '';
      try {
        expectAnswer(r, status);
      } catch (e) {
        error = (e as Error).message;
      }
      // Prism catches all but a wrong content type (it does not flag application/json where only
      // application/problem+json is documented); expectAnswer's own check catches that one.
      expect({ what, error }).toEqual({
        what,
        error: expect.stringMatching(
          what === 'problem-as-json' ? /^content-type is application\/json/ : /Prism reported contract violations/,
        ),
      });
    }
  });
});

describe('(a) the app behind a validating Prism proxy', () => {
  describe('happy paths', () => {
    test('meta endpoints', async () => {
      const root = await send('GET', '/', { headers: { accept: 'application/json' } });
      expectAnswer(root, 200);
      expect(root.body).toEqual({ docs: '/docs', openapi: '/openapi.yaml' });
      expectAnswer(await send('GET', '/healthz'), 200);
      expectAnswer(await send('GET', '/readyz'), 200);
      const spec = await send('GET', '/openapi.yaml');
      expectAnswer(spec, 200);
      expect(String(spec.body)).toContain('openapi: 3.1.0');
      const docs = await send('GET', '/docs');
      expectAnswer(docs, 200);
      expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
      const metrics = await send('GET', '/metrics', { staff: true });
      expectAnswer(metrics, 200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(String(metrics.body)).toContain('# TYPE order_up_charge_calls_total counter');
    });

    test('create (with and without an id), read, charge, fulfill, fulfill again', async () => {
      const created = await send('POST', '/orders', { body: newOrder() });
      expectAnswer(created, 201);
      const id = created.body.order.id;
      expect(created.headers.get('location')).toBe(`/orders/${id}`);
      expect(created.body.order).toMatchObject({ status: 'pending', totalCents: 3300, chargedAt: null });

      const ownId = uniqueId('web');
      const own = await send('POST', '/orders', { body: newOrder({ id: ownId }) });
      expectAnswer(own, 201);
      expect(own.body.order.id).toBe(ownId);

      const got = await send('GET', `/orders/${id}`);
      expectAnswer(got, 200);
      expect(got.body).toEqual(created.body);

      const charged = await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } });
      expectAnswer(charged, 200);
      expect(charged.body).toMatchObject({ chargedCents: 3300, order: { status: 'charged' } });
      expect(JSON.stringify(charged.body)).not.toContain('tok_visa');

      const fulfilled = await send('POST', `/orders/${id}/fulfill`, { staff: true });
      expectAnswer(fulfilled, 200);
      expect(fulfilled.body.order.status).toBe('fulfilled');
      const again = await send('POST', `/orders/${id}/fulfill`, { staff: true });
      expectAnswer(again, 200);
      expect(again.body.order.status).toBe('fulfilled');
    });

    test('the largest order the spec allows is created, charged and listed', async () => {
      const email = `${'a'.repeat(240)}@example.com`.slice(-254);
      const lineItems = Array.from({ length: 100 }, (_, i) => ({
        description: `${i} ${'é'.repeat(195)}`.slice(0, 200),
        priceCents: 100000000,
        quantity: 10000,
      }));
      const created = await send('POST', '/orders', { body: { id: 'x'.repeat(64), customerEmail: email, lineItems } });
      expectAnswer(created, 201);
      expect(created.body.order.totalCents).toBe(100 * 100000000 * 10000);
      const charged = await send('POST', `/orders/${'x'.repeat(64)}/charge`, { body: { cardToken: 't'.repeat(200) } });
      expectAnswer(charged, 200);
      expect(charge.calls.at(-1)).toEqual({ cardToken: 't'.repeat(200), amountCents: 1e14 });
      expectAnswer(await send('GET', '/orders?status=charged&limit=500', { staff: true }), 200);
    });

    test('a zero total is charged without a charge call', async () => {
      const id = await createdOrder({
        lineItems: [
          { description: 'Gift', priceCents: 500, quantity: 1 },
          { description: 'Voucher', priceCents: -500, quantity: 1 },
        ],
      });
      const calls = charge.calls.length;
      const charged = await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } });
      expectAnswer(charged, 200);
      expect(charged.body.chargedCents).toBe(0);
      expect(charge.calls.length).toBe(calls);
    });

    test('cancel a pending order (no body), a charged order (refund, with reason), and cancel again', async () => {
      const pending = await createdOrder();
      const cancelled = await send('POST', `/orders/${pending}/cancel`, { staff: true });
      expectAnswer(cancelled, 200);
      expect(cancelled.body).toMatchObject({ refundedCents: 0, order: { status: 'cancelled', cancelReason: null } });

      const charged = await chargedOrder();
      const refunded = await send('POST', `/orders/${charged}/cancel`, { staff: true, body: { reason: 'Customer called' } });
      expectAnswer(refunded, 200);
      expect(refunded.body).toMatchObject({ refundedCents: 3300, order: { status: 'cancelled', cancelReason: 'Customer called' } });
      expect(charge.calls.at(-1)).toEqual({ cardToken: 'tok_visa', amountCents: -3300 });

      const again = await send('POST', `/orders/${charged}/cancel`, { staff: true, body: {} });
      expectAnswer(again, 200);
      expect(again.body.refundedCents).toBe(0);
    });

    test('list orders with a staff token: filter, limit and cursors', async () => {
      const ids = [await createdOrder(), await createdOrder(), await createdOrder()];
      const first = await send('GET', '/orders?status=pending&limit=2', { staff: true });
      expectAnswer(first, 200);
      expect(first.body.orders).toHaveLength(2);
      expect(first.body.orders.map((o: { id: string }) => o.id)).toEqual([ids[2], ids[1]]);
      expect(typeof first.body.nextCursor).toBe('string');
      const second = await send('GET', `/orders?status=pending&limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`, {
        staff: true,
      });
      expectAnswer(second, 200);
      expect(second.body.orders[0].id).toBe(ids[0]);

      // Follow the cursor to the end: nextCursor is null on the last page.
      let page = await send('GET', '/orders?limit=500', { staff: true });
      expectAnswer(page, 200);
      while (page.body.nextCursor !== null) {
        page = await send('GET', `/orders?limit=500&cursor=${encodeURIComponent(page.body.nextCursor)}`, { staff: true });
        expectAnswer(page, 200);
      }
      expect(page.body.nextCursor).toBeNull();
    });
  });

  describe('errors', () => {
    test('400 invalid_request: bodies, path and query that break the spec (the strict proxy agrees they are invalid)', async () => {
      const id = await createdOrder();
      const cases: [string, string, CallOpts, string][] = [
        ['POST', '/orders', { body: newOrder({ customerEmail: 'not an email' }) }, '/customerEmail'],
        [
          'POST',
          '/orders',
          { body: newOrder({ lineItems: [{ description: 'Tea', priceCents: 100, quantity: 0 }] }) },
          '/lineItems/0/quantity',
        ],
        ['POST', '/orders', { body: newOrder({ lineItems: [] }) }, '/lineItems'],
        ['POST', '/orders', { body: newOrder({ coupon: 'FREE' }) }, '/coupon'],
        ['POST', '/orders', { body: { lineItems: newOrder().lineItems } }, '/customerEmail'],
        ['POST', '/orders', { body: newOrder({ id: 'has space' }) }, '/id'],
        ['POST', `/orders/${id}/charge`, { body: {} }, '/cardToken'],
        ['POST', `/orders/${id}/charge`, { body: { cardToken: 'tok', extra: 1 } }, '/extra'],
        ['POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 7 } }, '/reason'],
        ['GET', '/orders?limit=501', { staff: true }, '/query/limit'],
        ['GET', '/orders?limit=0', { staff: true }, '/query/limit'],
        ['GET', '/orders?status=shipped', { staff: true }, '/query/status'],
        ['GET', '/orders?limit=ten', { staff: true }, '/query/limit'],
        ['GET', `/orders/${'x'.repeat(65)}`, {}, '/path/id'],
        ['GET', '/orders/bad.id', {}, '/path/id'],
      ];
      for (const [method, path, opts, errorPath] of cases) {
        const r = await sendInvalid(method, path, opts);
        try {
          expectAnswer(r, 400, 'invalid_request');
          expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(errorPath);
        } catch (err) {
          throw new Error(`${method} ${path} ${JSON.stringify(opts.body)}: ${(err as Error).message}`, { cause: err });
        }
        const refused = await send(method, path, opts);
        try {
          expectPrismRefusal(refused);
        } catch (err) {
          throw new Error(`${method} ${path} ${JSON.stringify(opts.body)}: ${(err as Error).message}`, { cause: err });
        }
      }
    });

    test('400 invalid_request for what the spec cannot express as a schema: duplicate descriptions, malformed cursor, unknown query parameter', async () => {
      const dup = await send('POST', '/orders', {
        body: newOrder({
          lineItems: [
            { description: 'Tea', priceCents: 1, quantity: 1 },
            { description: 'Tea', priceCents: 2, quantity: 1 },
          ],
        }),
      });
      expectAnswer(dup, 400, 'invalid_request');
      expect(dup.body.errors).toEqual([expect.objectContaining({ path: '/lineItems/1/description' })]);

      const cursor = await send('GET', '/orders?cursor=not-a-cursor', { staff: true });
      expectAnswer(cursor, 400, 'invalid_request');
      expect(cursor.body.errors).toEqual([expect.objectContaining({ path: '/query/cursor' })]);

      // OpenAPI cannot forbid unknown query parameters (Prism lets them through); the app refuses them.
      const unknown = await send('GET', '/orders?colour=red', { staff: true });
      expectAnswer(unknown, 400, 'invalid_request');
      expect(unknown.body.errors).toEqual([expect.objectContaining({ path: '/query/colour' })]);
    });

    test('400 invalid_request for malformed JSON (sent to the app directly: Prism cannot parse it either)', async () => {
      const r = await app.call('POST', '/orders', { body: '{"customerEmail": ', headers: { 'content-type': 'application/json' } });
      expectAnswer(r, 400, 'invalid_request');
      expect(r.body.errors).toEqual([expect.objectContaining({ path: '' })]);
    });

    test('400 invalid_total', async () => {
      const r = await send('POST', '/orders', {
        body: newOrder({
          lineItems: [
            { description: 'Tea', priceCents: 100, quantity: 1 },
            { description: 'Discount', priceCents: -500, quantity: 1 },
          ],
        }),
      });
      expectAnswer(r, 400, 'invalid_total');
    });

    test('413 payload_too_large and 415 unsupported_media_type', async () => {
      const big = newOrder({
        lineItems: Array.from({ length: 5000 }, (_, i) => ({ description: `item ${i} ${'x'.repeat(200)}`, priceCents: 1, quantity: 1 })),
      });
      const tooLarge = await sendInvalid('POST', '/orders', { body: big });
      expectAnswer(tooLarge, 413, 'payload_too_large');

      const text = await sendInvalid('POST', '/orders', { body: 'hello', headers: { 'content-type': 'text/plain' } });
      expectAnswer(text, 415, 'unsupported_media_type');
      expectPrismRefusal(await send('POST', '/orders', { body: 'hello', headers: { 'content-type': 'text/plain' } }));
    });

    test('401 unauthorized on every staff endpoint, with WWW-Authenticate, before anything else', async () => {
      const id = await createdOrder();
      const wrong = { authorization: 'Bearer not-the-token' };
      for (const [method, path, body] of [
        ['GET', '/orders', undefined],
        ['GET', '/orders?limit=9999', undefined],
        ['POST', `/orders/${id}/cancel`, { reason: 'x' }],
        ['POST', `/orders/${id}/fulfill`, undefined],
        ['GET', '/metrics', undefined],
      ] as const) {
        const r = await sendInvalid(method, path, { headers: wrong, body });
        expectAnswer(r, 401, 'unauthorized');
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
        // Without any Authorization header Prism answers 401 itself, so ask the app directly.
        const none = await app.call(method, path, { body });
        expectAnswer(none, 401, 'unauthorized');
        expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      // The token is checked first: an invalid request without a valid token is still a 401.
      expectAnswer(
        await sendInvalid('POST', `/orders/${id}/cancel`, { headers: wrong, body: { reason: 7, extra: true } }),
        401,
        'unauthorized',
      );
      expectAnswer(await sendInvalid('POST', `/orders/${uniqueId('missing')}/fulfill`, { headers: wrong }), 401, 'unauthorized');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('pending');
    });

    test('402 payment_declined when the charge service answers 4xx; the order stays pending', async () => {
      const id = await createdOrder();
      charge.next({ status: 402 });
      expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_declined' } }), 402, 'payment_declined');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('pending');
      // Another card works.
      expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 200);
    });

    test('404 order_not_found on every operation', async () => {
      const missing = uniqueId('missing');
      expectAnswer(await send('GET', `/orders/${missing}`), 404, 'order_not_found');
      expectAnswer(await send('POST', `/orders/${missing}/charge`, { body: { cardToken: 'tok_visa' } }), 404, 'order_not_found');
      expectAnswer(await send('POST', `/orders/${missing}/cancel`, { staff: true }), 404, 'order_not_found');
      expectAnswer(await send('POST', `/orders/${missing}/fulfill`, { staff: true }), 404, 'order_not_found');
    });

    test('404 not_found and 405 method_not_allowed (sent to the app directly: Prism answers these itself)', async () => {
      expectAnswer(await app.call('GET', '/nope'), 404, 'not_found');
      expectAnswer(await app.call('DELETE', '/orders'), 405, 'method_not_allowed');
    });

    test('409 order_exists', async () => {
      const id = uniqueId('dup');
      expectAnswer(await send('POST', '/orders', { body: newOrder({ id }) }), 201);
      expectAnswer(await send('POST', '/orders', { body: newOrder({ id }) }), 409, 'order_exists');
    });

    test('409 order_not_pending, order_fulfilled, order_not_charged, order_cancelled', async () => {
      const charged = await chargedOrder();
      expectAnswer(await send('POST', `/orders/${charged}/charge`, { body: { cardToken: 'tok_visa' } }), 409, 'order_not_pending');

      expectAnswer(await send('POST', `/orders/${charged}/fulfill`, { staff: true }), 200);
      expectAnswer(await send('POST', `/orders/${charged}/cancel`, { staff: true }), 409, 'order_fulfilled');
      expectAnswer(await send('POST', `/orders/${charged}/charge`, { body: { cardToken: 'tok_visa' } }), 409, 'order_not_pending');

      const pending = await createdOrder();
      expectAnswer(await send('POST', `/orders/${pending}/fulfill`, { staff: true }), 409, 'order_not_charged');

      expectAnswer(await send('POST', `/orders/${pending}/cancel`, { staff: true }), 200);
      expectAnswer(await send('POST', `/orders/${pending}/fulfill`, { staff: true }), 409, 'order_cancelled');
      expectAnswer(await send('POST', `/orders/${pending}/charge`, { body: { cardToken: 'tok_visa' } }), 409, 'order_not_pending');
    });

    test('502 charge_failed: the charge service fails a charge or a refund; nothing changes', async () => {
      const id = await createdOrder();
      charge.next({ status: 500 });
      expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 502, 'charge_failed');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('pending');

      const charged = await chargedOrder();
      charge.next({ status: 503 });
      expectAnswer(await send('POST', `/orders/${charged}/cancel`, { staff: true }), 502, 'charge_failed');
      expect((await send('GET', `/orders/${charged}`)).body.order.status).toBe('charged');
    });

    test('502 charge_failed when the charge service cannot be reached', async () => {
      const unreachable = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: 'http://127.0.0.1:9' });
      try {
        const id = await createdOrder();
        expectAnswer(await unreachable.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 502, 'charge_failed');
      } finally {
        await unreachable.stop();
      }
    });

    test('409 operation_in_progress, 504 upstream_timeout on a charge, then 409 payment_in_doubt', async () => {
      const id = await createdOrder();
      charge.next({ hang: true });
      const before = charge.calls.length;
      const slow = send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } });
      await charge.received(before + 1);
      expectAnswer(await send('POST', `/orders/${id}/cancel`, { staff: true }), 409, 'operation_in_progress');
      expectAnswer(await slow, 504, 'upstream_timeout');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('pending');
      expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 409, 'payment_in_doubt');
      expectAnswer(await send('POST', `/orders/${id}/cancel`, { staff: true }), 409, 'payment_in_doubt');
    });

    test('502 payment_in_doubt when the connection breaks after a refund was sent, then 409 payment_in_doubt on fulfill', async () => {
      const id = await chargedOrder();
      charge.next({ reset: true });
      expectAnswer(await send('POST', `/orders/${id}/cancel`, { staff: true }), 502, 'payment_in_doubt');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('charged');
      expectAnswer(await send('POST', `/orders/${id}/fulfill`, { staff: true }), 409, 'payment_in_doubt');
    });

    test('502 payment_in_doubt when the connection breaks after a charge was sent', async () => {
      const id = await createdOrder();
      charge.next({ reset: true });
      expectAnswer(await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }), 502, 'payment_in_doubt');
    });

    test('502 fulfillment_failed and 504 upstream_timeout on fulfill; the order stays charged and a repeat works', async () => {
      const id = await chargedOrder({ lineItems: [{ description: 'Flaky item', priceCents: 100, quantity: 1 }] });
      fulfillment.fail('Flaky item', 500);
      expectAnswer(await send('POST', `/orders/${id}/fulfill`, { staff: true }), 502, 'fulfillment_failed');
      fulfillment.fail('Flaky item', 'hang');
      expectAnswer(await send('POST', `/orders/${id}/fulfill`, { staff: true }), 504, 'upstream_timeout');
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('charged');
      fulfillment.heal();
      expectAnswer(await send('POST', `/orders/${id}/fulfill`, { staff: true }), 200);
    });

    test('503 charge_queue_full with Retry-After (an instance with ORDER_UP_CHARGE_QUEUE_MAX=0, busy with one charge)', async () => {
      const id = await createdOrder();
      const busy = await createdOrder();
      // Charged before the hang: while that instance's call is in flight, no other instance may call.
      const charged = await chargedOrder();
      const before = charge.calls.length;
      // Nothing may wait on that instance: once a charge is in flight, the next is refused.
      charge.next({ hang: true });
      const inFlight = call(queueFullApp.url, 'POST', `/orders/${busy}/charge`, { body: { cardToken: 'tok_visa' } });
      await charge.received(before + 1);
      for (const r of [
        await call(lenientQueueFull.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' } }),
        await call(lenientQueueFull.url, 'POST', `/orders/${charged}/cancel`, { staff: true }),
      ]) {
        expectAnswer(r, 503, 'charge_queue_full');
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      charge.releaseHung();
      expect((await inFlight).status).toBe(200);
      expect(charge.calls.length).toBe(before + 1); // only the busy charge
      expect((await send('GET', `/orders/${id}`)).body.order.status).toBe('pending');
    });
  });
});

describe('(a2) Idempotency-Key through the validating proxy', () => {
  test('a replay (Idempotent-Replayed), 409 idempotency_key_in_use while the first runs, 422 idempotency_key_reused, 400 for a malformed key', async () => {
    const id = await createdOrder();
    const other = await createdOrder();
    const key = uniqueId('idem');
    const headers = { 'idempotency-key': key };
    charge.next({ status: 201, delayMs: 300 });
    const before = charge.calls.length;
    const first = send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' }, headers });
    await charge.received(before + 1);
    const inUse = await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' }, headers });
    expectAnswer(inUse, 409, 'idempotency_key_in_use');
    expect(inUse.headers.get('retry-after')).toBe('1');
    const answered = await first;
    expectAnswer(answered, 200);
    const replay = await send('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa' }, headers });
    expectAnswer(replay, 200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(answered.body);
    expectAnswer(
      await send('POST', `/orders/${other}/charge`, { body: { cardToken: 'tok_visa' }, headers }),
      422,
      'idempotency_key_reused',
    );
    expect(charge.calls.length).toBe(before + 1);
    const malformed = await sendInvalid('POST', `/orders/${other}/charge`, {
      body: { cardToken: 'tok_visa' },
      headers: { 'idempotency-key': 'has space' },
    });
    expectAnswer(malformed, 400, 'invalid_request');
    expect(malformed.body.errors).toEqual([expect.objectContaining({ path: '/header/Idempotency-Key' })]);
  });

  test('the Prism mock of the spec serves both codes and the replay header', async () => {
    const mock = await prism(['mock', 'openapi/order-up.yaml']);
    const headers = { 'idempotency-key': 'k-1' };
    const inUse = await call(mock.url, 'POST', '/orders/abc/charge', {
      body: { cardToken: 'tok_visa' },
      headers: { ...headers, prefer: 'code=409, example=idempotency_key_in_use' },
    });
    expect([inUse.status, inUse.body.code]).toEqual([409, 'idempotency_key_in_use']);
    const reused = await call(mock.url, 'POST', '/orders', { body: newOrder(), headers: { ...headers, prefer: 'code=422' } });
    expect([reused.status, reused.body.code]).toEqual([422, 'idempotency_key_reused']);
    const ok = await call(mock.url, 'POST', '/orders/abc/charge', {
      body: { cardToken: 'tok_visa' },
      headers: { ...headers, prefer: 'code=200' },
    });
    expect(ok.status).toBe(200);
    await mock.stop();
  });
});

describe('(b) what order-up sends matches the upstream contracts (Prism mocks with --errors)', () => {
  test('ChargeService: a charge and a refund are accepted; a request breaking the contract is not', async () => {
    const svc = new ChargeService(chargeMock.url, 5000, 10, new ChargeLock(await freshDatabaseUrl('contract_charge_lock')));
    try {
      expect(await svc.reserve().send({ cardToken: 'tok_visa', amountCents: 2000 })).toEqual({ kind: 'succeeded' });
      expect(await svc.reserve().send({ cardToken: 'tok_visa', amountCents: -2000 })).toEqual({ kind: 'succeeded' });
      // The mock has teeth: an amount of 0 breaks the contract, Prism answers 422 (a 4xx: "declined").
      expect(await svc.reserve().send({ cardToken: 'tok_visa', amountCents: 0 })).toEqual({ kind: 'declined', status: 422 });
    } finally {
      await svc.close();
    }
  });

  test('FulfillmentService: a line item is accepted; a request breaking the contract is not', async () => {
    const svc = new FulfillmentService(fulfillmentMock.url, 5000);
    expect(await svc.fulfill({ description: 'Blue mug', quantity: 2, orderID: 'web-1' })).toEqual({ ok: true });
    // The mock has teeth: quantity 0 breaks the contract; Prism refuses it with the spec's 400.
    expect(await svc.fulfill({ description: 'Blue mug', quantity: 0, orderID: 'web-1' })).toEqual({
      ok: false,
      reason: 'failed',
      detail: 'fulfillment service answered 400',
    });
  });

  test('the whole app against the mocks: charge, fulfill, and charge then cancel (refund)', async () => {
    const create = async () => {
      const r = await mockedApp.call('POST', '/orders', { body: newOrder() });
      expect(r.status).toBe(201);
      return r.body.order.id as string;
    };
    const a = await create();
    expect((await mockedApp.call('POST', `/orders/${a}/charge`, { body: { cardToken: 'tok_visa' } })).status).toBe(200);
    const fulfilled = await mockedApp.call('POST', `/orders/${a}/fulfill`, { staff: true });
    expect(fulfilled.status).toBe(200);
    expect(fulfilled.body.order.status).toBe('fulfilled');

    const b = await create();
    expect((await mockedApp.call('POST', `/orders/${b}/charge`, { body: { cardToken: 'tok_visa' } })).status).toBe(200);
    const cancelled = await mockedApp.call('POST', `/orders/${b}/cancel`, { staff: true, body: { reason: 'test' } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.refundedCents).toBe(3300);
  });
});

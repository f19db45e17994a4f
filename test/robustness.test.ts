// Issue 17, the HTTP and database half: the database unreachable or frozen, overload, hostile
// bodies, aborted and malformed requests. Every answer is checked, and so is what was stored.
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { call, newOrder, startTestApp, type Reply, type TestApp } from './support/app.js';
import { DbProxy } from './support/db-proxy.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { LogCapture } from './support/log-capture.js';
import { testSql, type TestSql } from './support/sql.js';
import { freshDatabaseUrl } from './support/test-db.js';
import { storedOrder, storedPayments } from './support/state.js';
import { TIMEOUT_MARGIN_MS } from '../src/db/database.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { limitHeapGrowth } from '../src/heap.js';

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The reply and how long it took. */
async function timed(send: () => Promise<Reply>): Promise<{ reply: Reply; ms: number }> {
  const started = Date.now();
  const reply = await send();
  return { reply, ms: Date.now() - started };
}

function expectRetryLater(reply: Reply, code: string) {
  expect(reply.status).toBe(503);
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(reply.body).toMatchObject({ status: 503, code, type: `https://order-up.example/problems/${code}` });
  expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(reply.headers.get('x-request-id')).toBeTruthy();
}

async function orderIds(sql: TestSql): Promise<string[]> {
  return (await sql.execute<{ id: string }[]>('select id from orders order by id')).map((r) => r.id);
}

describe('when the database is unreachable or too slow', () => {
  const DB_TIMEOUT_MS = 1000;
  // A connection or statement timeout, the client's margin past statement_timeout, and slack for a loaded machine.
  const BOUND_MS = DB_TIMEOUT_MS + TIMEOUT_MARGIN_MS + 2000;
  let databaseUrl: string;
  let proxy: DbProxy;
  let app: TestApp;
  let direct: TestSql;
  let charge: FakeChargeService;
  let fulfillment: FakeFulfillmentService;

  beforeAll(async () => {
    databaseUrl = await freshDatabaseUrl('robust_db');
    proxy = await DbProxy.start(databaseUrl);
    [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
    app = await startTestApp({
      databaseUrl: proxy.urlFor(databaseUrl),
      chargeUrl: charge.url,
      fulfillmentUrl: fulfillment.url,
      env: { ORDER_UP_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS) },
    });
    // The test's own view of the database, around the proxy.
    direct = testSql(databaseUrl);
  }, 60_000);
  afterAll(async () => {
    proxy?.slow(0);
    proxy?.restore();
    await app?.stop();
    await direct?.close();
    await proxy?.stop();
    await Promise.all([charge?.stop(), fulfillment?.stop()]);
  });

  test('when the database refuses connections, then every endpoint that needs it answers 503 not_ready with Retry-After within the bound (never 500), nothing is stored or sent, and all works again once it is back', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder({ id: 'cut-before' }) })).body.order.id as string;
    const orders = await orderIds(direct);
    const charges = charge.calls.length;

    proxy.cut();
    const attempts: [string, () => Promise<Reply>][] = [
      ['create', () => app.call('POST', '/orders', { body: newOrder({ id: 'cut-during' }) })],
      ['read', () => app.call('GET', `/orders/${id}`)],
      ['list', () => app.call('GET', '/orders', { staff: true })],
      ['charge', () => app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_cut' } })],
      ['cancel', () => app.call('POST', `/orders/${id}/cancel`, { staff: true })],
      ['fulfill', () => app.call('POST', `/orders/${id}/fulfill`, { staff: true })],
      ['readyz', () => app.call('GET', '/readyz')],
    ];
    for (const [name, send] of attempts) {
      const { reply, ms } = await timed(send);
      expect({ name, status: reply.status }).toEqual({ name, status: 503 });
      expectRetryLater(reply, 'not_ready');
      expect(ms).toBeLessThan(BOUND_MS);
    }
    expect((await app.call('GET', '/healthz')).status).toBe(200);
    expect(await orderIds(direct)).toEqual(orders);
    expect(await storedOrder({ db: direct }, id)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments({ db: direct }, id)).toEqual([]);
    expect(charge.calls.length).toBe(charges);

    proxy.restore();
    await until(async () => (await app.call('GET', '/readyz')).status === 200);
    expect((await app.call('POST', '/orders', { body: newOrder({ id: 'cut-during' }) })).status).toBe(201);
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_after' } })).status).toBe(200);
    expect(await storedOrder({ db: direct }, id)).toMatchObject({ status: 'charged', operation: null });
  }, 60_000);

  test('when the database stops answering during a create, then it answers 503 not_ready within the bound; the insert had committed, so a retry with the same id answers 409 order_exists', async () => {
    // A warm pool connection: the insert goes out on it at once, and only its answer is held back.
    expect((await app.call('GET', '/orders/cut-before')).status).toBe(200);
    const keyedBody = newOrder({ customerEmail: 'frozen-key@example.com' });
    proxy.slow(8000);
    try {
      const create = await timed(() => app.call('POST', '/orders', { body: newOrder({ id: 'frozen-create' }) }));
      expectRetryLater(create.reply, 'not_ready');
      expect(create.ms).toBeLessThan(BOUND_MS);
      expectRetryLater(await app.call('POST', '/orders', { body: keyedBody, headers: { 'idempotency-key': 'frozen-key' } }), 'not_ready');
      const read = await timed(() => app.call('GET', '/orders/cut-before'));
      expectRetryLater(read.reply, 'not_ready');
      expect(read.ms).toBeLessThan(BOUND_MS);
      const list = await timed(() => app.call('GET', '/orders', { staff: true }));
      expectRetryLater(list.reply, 'not_ready');
      expect(list.ms).toBeLessThan(BOUND_MS);
    } finally {
      proxy.slow(0);
    }
    // The ambiguous case the spec describes: the order exists, and the client's retry learns so.
    expect(await storedOrder({ db: direct }, 'frozen-create')).toMatchObject({ status: 'pending' });
    const retry = await app.call('POST', '/orders', { body: newOrder({ id: 'frozen-create' }) });
    expect(retry.status).toBe(409);
    expect(retry.body.code).toBe('order_exists');
    expect((await app.call('GET', '/orders/frozen-create')).status).toBe(200);
    // With an Idempotency-Key (and no id of its own) the retry is safe too: the key's answer is stored in
    // the insert's own statement, so it is either replayed or the order was never created - one order either way.
    const replay = await app.call('POST', '/orders', { body: keyedBody, headers: { 'idempotency-key': 'frozen-key' } });
    expect(replay.status).toBe(201);
    expect(await orderIds(direct)).toContain(replay.body.order.id);
    expect(await direct.execute(`select count(*)::int as n from orders where customer_email = ?`, [keyedBody.customerEmail])).toEqual([
      { n: 1 },
    ]);
  }, 60_000);
});

describe('when more requests are in progress than the bound', () => {
  let databaseUrl: string;
  let proxy: DbProxy;
  let app: TestApp;
  let direct: TestSql;

  beforeAll(async () => {
    databaseUrl = await freshDatabaseUrl('robust_overload');
    proxy = await DbProxy.start(databaseUrl);
    app = await startTestApp({ databaseUrl: proxy.urlFor(databaseUrl), env: { ORDER_UP_MAX_IN_FLIGHT: '8' } });
    direct = testSql(databaseUrl);
  }, 60_000);
  afterAll(async () => {
    proxy?.slow(0);
    await app?.stop();
    await direct?.close();
    await proxy?.stop();
  });

  test('when a burst exceeds the bound, then the excess is answered 503 overloaded at once and does nothing, the rest normally, and /healthz is answered ahead of the queued work', async () => {
    // Every database answer takes 300 ms: the first requests hold the bound while the burst arrives.
    proxy.slow(300);
    const finished: string[] = [];
    const ids = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
    const burst = ids.map((id) =>
      call(app.url, 'POST', '/orders', { body: newOrder({ id }) }).then((reply) => {
        finished.push(reply.status === 201 ? 'created' : 'refused');
        return { id, reply };
      }),
    );
    const health = call(app.url, 'GET', '/healthz').then((reply) => {
      finished.push('healthz');
      return reply;
    });
    const answers = await Promise.all(burst);
    expect((await health).status).toBe(200);
    proxy.slow(0);

    const created = answers.filter((a) => a.reply.status === 201);
    const refused = answers.filter((a) => a.reply.status !== 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const { reply } of refused) expectRetryLater(reply, 'overloaded');
    // At once: refusals come before the first order is created; so does /healthz.
    const firstCreated = finished.indexOf('created');
    expect(finished.indexOf('refused')).toBeLessThan(firstCreated);
    expect(finished.indexOf('healthz')).toBeLessThan(firstCreated);
    // Nothing was done for a refused request; every created order is stored.
    expect(await orderIds(direct)).toEqual(created.map((a) => a.id).sort());
    // Once the burst is over, the bound is free again.
    expect((await app.call('POST', '/orders', { body: newOrder({ id: 'after-burst' }) })).status).toBe(201);
  }, 60_000);
});

/** Writes `request` on a raw connection and resolves with everything the server sends until it closes. */
function rawExchange(url: string, request: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (chunks.length > 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(err)));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.write(request);
  });
}

function parseRaw(text: string): { status: number; headers: Record<string, string>; body: any } {
  const [head, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(rest.join('\r\n\r\n')) };
}

describe('when requests are hostile, malformed, cut short or too slow', () => {
  let app: TestApp;
  const logs = new LogCapture();

  beforeAll(async () => {
    app = await startTestApp({
      logDestination: logs,
      logLevel: 'info',
      env: { ORDER_UP_HEADERS_TIMEOUT_MS: '1000', ORDER_UP_REQUEST_TIMEOUT_MS: '1500' },
    });
  });
  afterAll(async () => {
    await app?.stop();
  });

  const orderCount = async () => (await app.db.execute<{ n: string }[]>('select count(*) as n from orders'))[0].n;

  test('when a gzip body is not gzip, then 400 invalid_request; when the encoding is unknown, then 415; a real gzip body is read', async () => {
    const before = await orderCount();
    const plain = await app.call('POST', '/orders', {
      body: newOrder(),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    expect(plain.status).toBe(400);
    expect(plain.body).toMatchObject({ code: 'invalid_request', errors: [{ path: '' }] });
    const unknown = await app.call('POST', '/orders', {
      body: newOrder(),
      headers: { 'content-type': 'application/json', 'content-encoding': 'snappy' },
    });
    expect(unknown.status).toBe(415);
    expect(unknown.body.code).toBe('unsupported_media_type');
    expect(await orderCount()).toBe(before);

    const res = await fetch(`${app.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(newOrder({ id: 'gzipped' }))),
    });
    expect(res.status).toBe(201);
    expect((await app.db.execute('select id from orders where id = ?', ['gzipped'])).length).toBe(1);
  });

  test('when a body has 60,000 unknown fields, then a 400 under 20 KB lists at most 50 errors, its detail states the total, and it answers quickly', async () => {
    const body: Record<string, unknown> = newOrder();
    for (let i = 0; i < 60_000; i += 1) body[`f${i}`] = 'x';
    const text = JSON.stringify(body);
    expect(text.length).toBeGreaterThan(700_000);
    expect(text.length).toBeLessThan(1_048_576);
    const before = await orderCount();
    const { reply, ms } = await timed(() => app.call('POST', '/orders', { body: text }));
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe('invalid_request');
    expect(JSON.stringify(reply.body).length).toBeLessThan(20_000);
    expect(reply.body.errors.length).toBeLessThanOrEqual(50);
    expect(reply.body.errors[0]).toEqual({ path: '/f0', message: 'is not a known field' });
    expect(reply.body.detail).toContain('60000');
    expect(ms).toBeLessThan(5000); // a few hundred ms here; Ajv's 60,000 error objects took seconds
    expect(await orderCount()).toBe(before);
  });

  test('when a body breaks more than 50 rules, then 50 errors are listed and the detail says how many there were', async () => {
    const lineItems = Array.from({ length: 60 }, (_, i) => ({ description: `item ${i}`, priceCents: 1, quantity: 0 }));
    const reply = await app.call('POST', '/orders', { body: newOrder({ lineItems: lineItems.slice(0, 100) }) });
    expect(reply.status).toBe(400);
    expect(reply.body.errors).toHaveLength(50);
    expect(reply.body.detail).toMatch(/60 errors were found; the first 50 are listed/);
  });

  test('when the client aborts a request, then it leaves exactly one access-log line (status 499)', async () => {
    const { hostname, port } = new URL(app.url);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => undefined);
    // Expect: 100-continue: node answers "100 Continue" once the request has reached the app.
    socket.write(
      `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\nExpect: 100-continue\r\nX-Request-Id: robust-aborted\r\n\r\n`,
    );
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write('{"customerEmail":');
    socket.destroy();
    await until(() => logs.accessLines('robust-aborted').length > 0);
    // Another request's line comes after any second line of the aborted one would have.
    await app.call('GET', '/healthz', { headers: { 'x-request-id': 'robust-after-abort' } });
    await until(() => logs.accessLines('robust-after-abort').length > 0);
    expect(logs.accessLines('robust-aborted')).toEqual([
      expect.objectContaining({ status: 499, method: 'POST', path: '/orders', aborted: true }),
    ]);
  });

  test('when a request body does not arrive in time, then 408 request_timeout as problem+json with its X-Request-Id, and one access-log line with 408', async () => {
    const { hostname, port } = new URL(app.url);
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(
      `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\nX-Request-Id: robust-slow-body\r\n\r\n{"customerEmail":`,
    );
    await closed;
    const text = Buffer.concat(chunks).toString('utf8');
    const reply = parseRaw(text);
    expect(reply.status).toBe(408);
    expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(reply.headers['x-request-id']).toBe('robust-slow-body');
    expect(reply.body).toMatchObject({ status: 408, code: 'request_timeout' });
    await until(() => logs.accessLines('robust-slow-body').length > 0);
    await app.call('GET', '/healthz', { headers: { 'x-request-id': 'robust-after-slow' } });
    await until(() => logs.accessLines('robust-after-slow').length > 0);
    expect(logs.accessLines('robust-slow-body')).toEqual([expect.objectContaining({ status: 408 })]);
  });

  test('when the headers are 100 KB, then 431 headers_too_large as problem+json with an X-Request-Id, and an access-log line', async () => {
    const text = await rawExchange(app.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(100_000)}\r\n\r\n`);
    const reply = parseRaw(text);
    expect(reply.status).toBe(431);
    expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(reply.headers['x-request-id']).toMatch(/^[A-Za-z0-9._-]{8,}$/);
    expect(reply.body).toMatchObject({
      status: 431,
      code: 'headers_too_large',
      type: 'https://order-up.example/problems/headers_too_large',
    });
    await until(() => logs.accessLines(reply.headers['x-request-id']).length > 0);
    expect(logs.accessLines(reply.headers['x-request-id'])).toEqual([
      expect.objectContaining({ status: 431, clientError: 'HPE_HEADER_OVERFLOW' }),
    ]);
  });

  test('when the request line is malformed, then 400 invalid_request as problem+json with an X-Request-Id', async () => {
    const reply = parseRaw(await rawExchange(app.url, 'THIS IS NOT HTTP\r\n\r\n'));
    expect(reply.status).toBe(400);
    expect(reply.headers['x-request-id']).toBeTruthy();
    expect(reply.body).toMatchObject({ status: 400, code: 'invalid_request', errors: [{ path: '' }] });
  });

  test('when the server is configured, then its keep-alive, header and request timeouts and connection limit are the configured ones', () => {
    const server = app.server.server;
    expect(server.keepAliveTimeout).toBe(65_000);
    expect(server.headersTimeout).toBe(1000);
    expect(server.requestTimeout).toBe(1500);
    expect(server.maxConnections).toBe(1000);
  });
});

describe('when the robustness settings are configured', () => {
  test('when they are unset, then the documented defaults apply', () => {
    const config = loadConfig({});
    expect(config.dbTimeoutMs).toBe(5000);
    expect(config.maxInFlight).toBe(256);
    expect(config.http).toEqual({ headersTimeoutMs: 20_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, maxConnections: 1000 });
    expect(config.heapGrowingPercent).toBe(50);
    expect(loadConfig({ ORDER_UP_HEAP_GROWING_PERCENT: '0' }).heapGrowingPercent).toBe(0);
  });

  test('when a serving process limits its heap growth, then 0 and a --heap-growing-percent given to node leave V8 as it is', () => {
    expect(limitHeapGrowth(0, [])).toBe(false);
    expect(limitHeapGrowth(100, ['--heap-growing-percent=30'])).toBe(false);
    expect(limitHeapGrowth(100, ['--heap_growing_percent', '30'])).toBe(false);
    expect(limitHeapGrowth(100, ['--max-old-space-size=512'])).toBe(true);
  });

  test.each([
    ['ORDER_UP_DB_TIMEOUT_MS', '0'],
    ['ORDER_UP_DB_TIMEOUT_MS', 'soon'],
    ['ORDER_UP_MAX_IN_FLIGHT', '0'],
    ['ORDER_UP_MAX_CONNECTIONS', '-1'],
    ['ORDER_UP_KEEP_ALIVE_TIMEOUT_MS', '1.5'],
    ['ORDER_UP_HEADERS_TIMEOUT_MS', '40000'], // longer than the request timeout (30 s)
    ['ORDER_UP_HEAP_GROWING_PERCENT', '-1'],
    ['ORDER_UP_HEAP_GROWING_PERCENT', '1001'],
  ])('when %s is %s, then the configuration is refused', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});

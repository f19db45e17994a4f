import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { newOrder, startTestApp, STAFF_TOKEN, type Reply, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { LogCapture } from './support/log-capture.js';

const run = promisify(execFile);
const ROOT = process.cwd();

const CARD_TOKEN = 'tok_SECRET_card_7f3a9c';
const DECLINED_CARD_TOKEN = 'tok_SECRET_declined_1b2c';
const WRONG_STAFF_TOKEN = 'wrong-SECRET-staff-token';

let app: TestApp;
let charge: FakeChargeService;
const logs = new LogCapture();

beforeAll(async () => {
  charge = await FakeChargeService.start();
  app = await startTestApp({ chargeUrl: charge.url, logDestination: logs, logLevel: 'trace' });
});
afterAll(async () => {
  await app?.stop();
  await charge?.stop();
});

async function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
  return app.db.execute<T[]>(query, params);
}

async function orderCount(): Promise<number> {
  const [row] = await sql<{ n: string }>('select count(*) as n from orders');
  return Number(row.n);
}

function expectProblemShape(reply: Reply, status: number, code: string) {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  expect(reply.body).toEqual(
    expect.objectContaining({
      type: `https://order-up.example/problems/${code}`,
      title: expect.any(String),
      status,
      detail: expect.any(String),
      code,
    }),
  );
  expect(reply.body.title.length).toBeGreaterThan(0);
  expect(reply.body.detail.length).toBeGreaterThan(0);
  const allowed = ['type', 'title', 'status', 'detail', 'code', 'errors', 'instance'];
  expect(Object.keys(reply.body).filter((k) => !allowed.includes(k))).toEqual([]);
  if (code === 'invalid_request') {
    expect(reply.body.errors).toEqual(expect.arrayContaining([{ path: expect.any(String), message: expect.any(String) }]));
  } else {
    expect(reply.body.errors).toBeUndefined();
  }
  expect(reply.headers.get('x-request-id')).toBeTruthy();
}

describe('when a request fails, then the answer is an RFC 9457 problem with a stable code', () => {
  test.each<[string, () => Promise<Reply>, number, string]>([
    ['an unknown order is read', () => app.call('GET', '/orders/nope'), 404, 'order_not_found'],
    ['a create body is invalid', () => app.call('POST', '/orders', { body: { customerEmail: 'x' } }), 400, 'invalid_request'],
    [
      'a create total is negative',
      () => app.call('POST', '/orders', { body: newOrder({ lineItems: [{ description: 'd', priceCents: -1, quantity: 1 }] }) }),
      400,
      'invalid_total',
    ],
    ['the list is called without a token', () => app.call('GET', '/orders'), 401, 'unauthorized'],
    ['an unknown route is called', () => app.call('GET', '/no/such/route'), 404, 'not_found'],
    ['an unknown route under /orders is called', () => app.call('GET', '/orders/x/y/z'), 404, 'not_found'],
    ['DELETE is sent to an order', () => app.call('DELETE', '/orders/x'), 405, 'method_not_allowed'],
    ['PUT is sent to the collection', () => app.call('PUT', '/orders', { body: newOrder() }), 405, 'method_not_allowed'],
    ['POST is sent to /healthz', () => app.call('POST', '/healthz', { body: {} }), 405, 'method_not_allowed'],
    [
      'the body is text/plain',
      () => app.call('POST', '/orders', { body: 'hello', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    ],
    ['the body is over 1 MB', () => app.call('POST', '/orders', { body: { pad: 'x'.repeat(1_048_577) } }), 413, 'payload_too_large'],
    ['the body is malformed JSON', () => app.call('POST', '/orders', { body: '{"a":' }), 400, 'invalid_request'],
  ])('when %s, then the problem has type, title, status, detail and code', async (_name, send, status, code) => {
    const before = await orderCount();
    expectProblemShape(await send(), status, code);
    expect(await orderCount()).toBe(before);
  });

  test.each<[string, (id: string) => Promise<Reply>]>([
    ['malformed JSON to cancel', (id) => app.call('POST', `/orders/${id}/cancel`, { body: '{"reason":' })],
    [
      'a text/plain body to cancel',
      (id) => app.call('POST', `/orders/${id}/cancel`, { body: 'cancel it', headers: { 'content-type': 'text/plain' } }),
    ],
    ['a body over 1 MB to fulfill', (id) => app.call('POST', `/orders/${id}/fulfill`, { body: { pad: 'x'.repeat(1_048_577) } })],
    [
      'a wrong token and malformed JSON to cancel',
      (id) => app.call('POST', `/orders/${id}/cancel`, { body: '{', headers: { authorization: `Bearer ${WRONG_STAFF_TOKEN}` } }),
    ],
  ])(
    'when a staff endpoint gets %s without a valid token, then 401 comes before any complaint about the body, and nothing changes',
    async (_name, send) => {
      const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
      const reply = await send(id);
      expectProblemShape(reply, 401, 'unauthorized');
      expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await app.call('GET', `/orders/${id}`)).body.order.status).toBe('pending');
    },
  );

  test('when an id is taken, then 409 order_exists has the problem shape', async () => {
    expect((await app.call('POST', '/orders', { body: newOrder({ id: 'edge-taken' }) })).status).toBe(201);
    expectProblemShape(await app.call('POST', '/orders', { body: newOrder({ id: 'edge-taken' }) }), 409, 'order_exists');
  });

  test.each([
    ['DELETE', '/orders/x', 'GET, HEAD'],
    ['PUT', '/orders', 'GET, HEAD, POST'],
    ['GET', '/orders/x/charge', 'POST'],
  ])('when %s %s is not allowed, then 405 lists the allowed methods in Allow', async (method, path, allow) => {
    const reply = await app.call(method, path, { staff: true });
    expectProblemShape(reply, 405, 'method_not_allowed');
    expect(reply.headers.get('allow')).toBe(allow);
  });

  test('when HEAD is sent to a GET endpoint, then it answers like GET without a body', async () => {
    const health = await fetch(`${app.url}/healthz`, { method: 'HEAD' });
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('');
    const missing = await fetch(`${app.url}/orders/nope`, { method: 'HEAD' });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  test('when the same code occurs twice, then its title is the same (title is fixed per code)', async () => {
    const a = await app.call('GET', '/orders/nope-1');
    const b = await app.call('GET', '/orders/nope-2');
    expect(a.body.title).toBe(b.body.title);
  });
});

describe('when the meta endpoints are called', () => {
  test('when a browser opens /, then it is redirected to /docs', async () => {
    for (const accept of ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', '*/*', undefined]) {
      const res = await fetch(`${app.url}/`, { redirect: 'manual', headers: accept ? { accept } : {} });
      expect({ accept, status: res.status, location: res.headers.get('location') }).toEqual({ accept, status: 302, location: '/docs' });
    }
    // Followed, as a browser does: the reference.
    const page = await fetch(`${app.url}/`);
    expect(page.url).toBe(`${app.url}/docs`);
    expect(await page.text()).toMatch(/redoc/i);
  });

  test('when a client asks / for JSON, then it answers where the docs and the contract are', async () => {
    const reply = await app.call('GET', '/', { headers: { accept: 'application/json' } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reply.body).toEqual({ docs: '/docs', openapi: '/openapi.yaml' });
  });

  test('when /healthz is called, then 200 {status: ok}', async () => {
    const reply = await app.call('GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reply.body).toEqual({ status: 'ok' });
  });

  test('when /readyz is called with the database up, then 200 {status: ok}', async () => {
    const reply = await app.call('GET', '/readyz');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'ok' });
  });

  test('when /openapi.yaml is called, then it answers the spec file as YAML', async () => {
    const reply = await app.call('GET', '/openapi.yaml');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/yaml/);
    expect(reply.body).toBe(await readFile(path.join(ROOT, 'openapi', 'order-up.yaml'), 'utf8'));
  });

  test('when /docs is called, then an HTML page loads Redoc from the server itself', async () => {
    const reply = await app.call('GET', '/docs');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^text\/html/);
    expect(reply.body).toMatch(/redoc/i);
    expect(reply.body).toContain('/openapi.yaml');
    expect(reply.body).toContain('/docs/redoc.standalone.js');
    expect(reply.body).not.toMatch(/src="https?:/); // works offline

    const res = await fetch(`${app.url}/docs/redoc.standalone.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    expect((await res.text()).length).toBeGreaterThan(100_000);
  });
});

describe('when it comes to request ids', () => {
  test('when a valid X-Request-Id is sent, then it is echoed and logged', async () => {
    const reply = await app.call('GET', '/healthz', { headers: { 'x-request-id': 'edge-req-42' } });
    expect(reply.headers.get('x-request-id')).toBe('edge-req-42');
    const errorReply = await app.call('GET', '/orders/nope', { headers: { 'x-request-id': 'edge-req-43' } });
    expect(errorReply.headers.get('x-request-id')).toBe('edge-req-43');
    const line = logs.records().find((r) => r.reqId === 'edge-req-43' && r.msg === 'request');
    expect(line).toMatchObject({ status: 404, method: 'GET' });
    expect(typeof line?.ms).toBe('number');
  });

  test('when no X-Request-Id is sent, then a fresh one is made for each request', async () => {
    const a = (await app.call('GET', '/healthz')).headers.get('x-request-id');
    const b = (await app.call('GET', '/healthz')).headers.get('x-request-id');
    expect(a).toMatch(/^[A-Za-z0-9._-]{8,}$/);
    expect(b).toMatch(/^[A-Za-z0-9._-]{8,}$/);
    expect(a).not.toBe(b);
  });

  test.each([
    ['has a newline-free but unsafe character', 'a<script>'],
    ['is 65 characters', 'a'.repeat(65)],
    ['has spaces', 'a b'],
  ])('when the X-Request-Id %s, then it is replaced by a generated one', async (_name, id) => {
    const reply = await app.call('GET', '/healthz', { headers: { 'x-request-id': id } });
    expect(reply.status).toBe(200);
    const echoed = reply.headers.get('x-request-id');
    expect(echoed).not.toBe(id);
    expect(echoed).toMatch(/^[A-Za-z0-9._-]{8,}$/);
  });
});

describe('when secrets pass through the app, then no log line contains them', () => {
  test('when orders are charged, declined, listed and cancelled, then neither card nor staff tokens are logged', async () => {
    const paid = await app.call('POST', '/orders', { body: newOrder() });
    const id = paid.body.order.id;
    const charged = await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: CARD_TOKEN } });
    expect(charged.status).toBe(200);
    expect(charged.body.order.status).toBe('charged');

    const declined = await app.call('POST', '/orders', { body: newOrder() });
    charge.next({ status: 402 });
    const refused = await app.call('POST', `/orders/${declined.body.order.id}/charge`, { body: { cardToken: DECLINED_CARD_TOKEN } });
    expect(refused.body.code).toBe('payment_declined');
    // An invalid charge body that carries the token next to an unknown field.
    const bad = await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: CARD_TOKEN, extra: CARD_TOKEN } });
    expect(bad.status).toBe(400);

    expect((await app.call('GET', '/orders', { staff: true })).status).toBe(200);
    expect((await app.call('GET', '/orders', { headers: { authorization: `Bearer ${WRONG_STAFF_TOKEN}` } })).status).toBe(401);
    const cancelled = await app.call('POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'test' } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.refundedCents).toBe(3300);

    // The stored state: the token is kept (for the refund), the charge service got it, responses never had it.
    const payments = await sql<{ card_token: string; kind: string }>('select card_token, kind from payments where order_id = ?', [id]);
    expect(payments.map((p) => p.card_token)).toEqual([CARD_TOKEN, CARD_TOKEN]);
    expect(charge.calls.map((c) => c.cardToken)).toContain(CARD_TOKEN);
    for (const reply of [charged, refused, bad, cancelled]) expect(JSON.stringify(reply.body)).not.toContain('tok_SECRET');

    const text = logs.text;
    expect(logs.lines.length).toBeGreaterThan(5);
    expect(text).not.toContain('tok_SECRET');
    expect(text).not.toContain(STAFF_TOKEN);
    expect(text).not.toContain(WRONG_STAFF_TOKEN);
    // One line per request, with status and duration.
    const requests = logs.records().filter((r) => r.msg === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(7);
    for (const r of requests) {
      expect(typeof r.reqId).toBe('string');
      expect(typeof r.status).toBe('number');
      expect(typeof r.ms).toBe('number');
    }
  });
});

describe('when a database statement fails with a card token among its values', () => {
  test('when storing the payment fails, then 500 internal_error, the order stays pending, and the logged error omits the token', async () => {
    const conn = app.db;
    // Make the payments journal refuse inserts: the statement that fails then carries the card token.
    await conn.execute(
      `create function edge_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by test trigger'; end $$`,
    );
    await conn.execute(`create trigger edge_refuse before insert on payments for each row execute function edge_refuse()`);
    const token = 'tok_SECRET_in_sql_5e6f';
    try {
      const created = await app.call('POST', '/orders', { body: newOrder() });
      const before = logs.lines.length;
      const reply = await app.call('POST', `/orders/${created.body.order.id}/charge`, { body: { cardToken: token } });
      expectProblemShape(reply, 500, 'internal_error');
      expect(JSON.stringify(reply.body)).not.toMatch(/tok_|insert|payments|refused/);
      const [row] = await sql<{ status: string }>('select status from orders where id = ?', [created.body.order.id]);
      expect(row.status).toBe('pending');
      expect(await sql('select 1 from payments where order_id = ?', [created.body.order.id])).toEqual([]);
      const newLines = logs.lines.slice(before);
      const errorLine = newLines
        .map((l) => JSON.parse(l) as { level: number; err?: { message: string } })
        .find((r) => r.level === 50 && r.err);
      expect(errorLine?.err?.message).toMatch(/refused by test trigger/); // still useful to operators
      expect(newLines.join('\n')).not.toContain(token);
    } finally {
      await conn.execute('drop trigger edge_refuse on payments');
      await conn.execute('drop function edge_refuse()');
    }
  });
});

describe('when the database becomes unreachable', () => {
  let broken: TestApp;
  let dbName: string;
  const brokenLogs = new LogCapture();
  let admin: pg.Client;

  beforeAll(async () => {
    broken = await startTestApp({ logDestination: brokenLogs, logLevel: 'info' });
    dbName = decodeURIComponent(new URL(broken.rt.databaseUrl).pathname.slice(1));
    admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_ADMIN_URL ?? process.env.DATABASE_URL });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.query(`alter database ${admin.escapeIdentifier(dbName)} allow_connections true`).catch(() => undefined);
    await admin?.end();
    await broken?.stop().catch(() => undefined);
  });

  async function cutOff() {
    const ident = admin.escapeIdentifier(dbName);
    await admin.query(`alter database ${ident} allow_connections false`);
    // Every connection but the process's lease: losing that ends the process by design
    // (test/charge-crash.test.ts checks it), and this test is about the request path.
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = $1 and pid <> pg_backend_pid() and application_name <> 'order-up lease'`,
      [dbName],
    );
  }

  test('when the database cannot be reached, then /readyz and reads answer 503 not_ready without internals, /healthz 200; then ready again', async () => {
    const created = await broken.call('POST', '/orders', { body: newOrder() });
    expect(created.status).toBe(201);
    expect((await broken.call('GET', '/readyz')).status).toBe(200);

    await cutOff();

    const ready = await broken.call('GET', '/readyz');
    expectProblemShape(ready, 503, 'not_ready');
    expect(ready.body.detail).not.toMatch(/allow|connection|postgres|ECONN|terminat/i);
    const health = await broken.call('GET', '/healthz');
    expect(health.status).toBe(200);

    // The database gone mid-flight is not a bug: 503 not_ready with Retry-After, revealing nothing.
    const read = await broken.call('GET', `/orders/${created.body.order.id}`);
    expectProblemShape(read, 503, 'not_ready');
    expect(Number(read.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = JSON.stringify(read.body);
    expect(body).not.toMatch(/at .*\.(ts|js):\d+|Error:|select|postgres|connection|allow_connections|\bpg\b/i);
    expect(body).not.toContain(dbName);
    // ... and is logged in full for operators (a warning), under the request id.
    const reqId = read.headers.get('x-request-id');
    expect(brokenLogs.records().some((r) => r.reqId === reqId && r.level === 40 && r.err)).toBe(true);

    await admin.query(`alter database ${admin.escapeIdentifier(dbName)} allow_connections true`);
    let again: Reply | undefined;
    for (let i = 0; i < 50; i++) {
      again = await broken.call('GET', '/readyz');
      if (again.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(again?.status).toBe(200);
    const reread = await broken.call('GET', `/orders/${created.body.order.id}`);
    expect(reread.status).toBe(200);
    expect(reread.body.order).toEqual(created.body.order);
  });

  test('when the database URL has a password, then no log line contains it', () => {
    const password = new URL(broken.rt.databaseUrl).password;
    if (password) expect(brokenLogs.text).not.toContain(password);
  });
});

describe('when the generated types are compared with the spec', () => {
  test('when openapi-typescript runs on the spec, then its output equals src/generated/order-up.ts (run `make gen` if not)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'order-up-drift-'));
    try {
      const out = path.join(dir, 'order-up.ts');
      await run(path.join(ROOT, 'node_modules', '.bin', 'openapi-typescript'), [path.join(ROOT, 'openapi', 'order-up.yaml'), '-o', out], {
        cwd: ROOT,
      });
      const generated = await readFile(out, 'utf8');
      const committed = await readFile(path.join(ROOT, 'src', 'generated', 'order-up.ts'), 'utf8');
      expect(generated.length).toBeGreaterThan(1000);
      expect(committed).toBe(generated);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

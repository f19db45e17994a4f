// CORS as the spec and docs/frontend-guide.md say: no CORS headers while CORS_ORIGINS is unset; with it set, the listed
// origins get Access-Control-Allow-Origin on every answer (errors included) and their preflights
// are answered 204; any other origin gets no CORS header at all.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type Reply, type TestApp } from './support/app.js';

const SHOP = 'https://shop.example';
const STAFF = 'http://localhost:5173';

let plain: TestApp;
let withCors: TestApp;

beforeAll(async () => {
  plain = await startTestApp();
  // Same database, CORS on. The second entry is written sloppily on purpose (case, trailing slash).
  withCors = await startTestApp({ databaseUrl: plain.rt.databaseUrl, env: { CORS_ORIGINS: `${SHOP}, HTTP://LocalHost:5173/` } });
});

afterAll(async () => {
  await withCors?.stop();
  await plain?.stop();
});

const corsHeaders = (r: Reply) => [...r.headers.keys()].filter((k) => k.startsWith('access-control-'));

const preflight = (app: TestApp, path: string, origin: string, method = 'POST', headers = 'content-type') =>
  app.call('OPTIONS', path, { headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });

describe('CORS_ORIGINS unset', () => {
  test('no CORS headers on answers, errors or preflights', async () => {
    const created = await plain.call('POST', '/orders', { body: newOrder(), headers: { origin: SHOP } });
    expect(created.status).toBe(201);
    expect(corsHeaders(created)).toEqual([]);
    expect(corsHeaders(await plain.call('GET', '/orders/nope', { headers: { origin: SHOP } }))).toEqual([]);
    const pre = await preflight(plain, '/orders', SHOP);
    expect(pre.status).not.toBe(204);
    expect(corsHeaders(pre)).toEqual([]);
  });
});

describe('CORS_ORIGINS set', () => {
  test('a listed origin gets Access-Control-Allow-Origin and the exposed headers, on success and on errors', async () => {
    const created = await withCors.call('POST', '/orders', { body: newOrder(), headers: { origin: SHOP } });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(created.headers.get('vary')).toMatch(/\bOrigin\b/i);
    const exposed = (created.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['location', 'x-request-id', 'retry-after']));

    // The frontend must be able to read problem+json answers too.
    const missing = await withCors.call('GET', '/orders/nope', { headers: { origin: SHOP } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe(SHOP);
    const unauthorized = await withCors.call('GET', '/orders', { headers: { origin: SHOP } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(SHOP);
    const wrongType = await withCors.call('POST', '/orders', { body: 'x', headers: { origin: SHOP, 'content-type': 'text/plain' } });
    expect(wrongType.status).toBe(415);
    expect(wrongType.headers.get('access-control-allow-origin')).toBe(SHOP);
  });

  test('preflights of a listed origin are answered 204 with the allowed methods and headers', async () => {
    const id = (await withCors.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    for (const [path, method, headers] of [
      ['/orders', 'POST', 'content-type'],
      [`/orders/${id}/charge`, 'POST', 'content-type'],
      ['/orders?status=pending', 'GET', 'authorization'],
      [`/orders/${id}/cancel`, 'POST', 'authorization,content-type'],
      [`/orders/${id}/fulfill`, 'POST', 'authorization,x-request-id'],
    ]) {
      const r = await preflight(withCors, path, SHOP, method, headers);
      expect({ path, status: r.status }).toEqual({ path, status: 204 });
      expect(r.headers.get('access-control-allow-origin')).toBe(SHOP);
      const methods = (r.headers.get('access-control-allow-methods') ?? '').toUpperCase().split(/\s*,\s*/);
      expect(methods).toEqual(expect.arrayContaining(['GET', 'POST']));
      const allowed = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(headers.split(',')));
      expect(Number(r.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    }
    // The preflight did nothing to the order.
    expect((await withCors.call('GET', `/orders/${id}`)).body.order.status).toBe('pending');
  });

  test('every listed origin is allowed, however it was written in CORS_ORIGINS', async () => {
    const r = await withCors.call('GET', '/healthz', { headers: { origin: STAFF } });
    expect(r.headers.get('access-control-allow-origin')).toBe(STAFF);
    const pre = await preflight(withCors, '/orders', STAFF, 'GET', 'authorization');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(STAFF);
  });

  test('an unlisted origin gets no CORS header, on answers and on preflights', async () => {
    for (const origin of ['https://evil.example', 'https://shop.example.evil.example', 'http://shop.example', 'null']) {
      const r = await withCors.call('GET', '/healthz', { headers: { origin } });
      expect(r.status).toBe(200);
      expect({ origin, cors: corsHeaders(r) }).toEqual({ origin, cors: [] });
      expect(r.headers.get('vary')).toMatch(/\bOrigin\b/i);
      const pre = await preflight(withCors, '/orders', origin);
      expect(pre.status).not.toBe(204);
      expect({ origin, cors: corsHeaders(pre) }).toEqual({ origin, cors: [] });
    }
  });

  test('a same-origin request (no Origin header) is answered as usual, without CORS headers', async () => {
    const r = await withCors.call('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(corsHeaders(r)).toEqual([]);
  });
});

// Retrying safely with Idempotency-Key (the spec's "Retrying safely"): a retry with the key gets the
// first answer back and nothing is done twice - checked in the answers, the stored state and what
// the fake charge service received.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { call, newOrder, startTestApp, STAFF_TOKEN, type Reply, type TestApp } from './support/app.js';
import { startChildServer } from './support/child-server.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { FakeChargeService } from './support/fake-charge.js';
import { storedOrder, storedPayments } from './support/state.js';
import { purgeExpiredKeys } from '../src/domain/idempotency.js';

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

let keys = 0;
const newKey = () => `key-${Date.now()}-${(keys += 1)}`;

async function pendingOrder(): Promise<string> {
  const res = await app.call('POST', '/orders', { body: newOrder() });
  expect(res.status).toBe(201);
  return res.body.order.id as string;
}

const charge = (id: string, key: string, cardToken = 'tok_visa_4242', on: TestApp = app) =>
  on.call('POST', `/orders/${id}/charge`, { body: { cardToken }, headers: { 'idempotency-key': key } });

/** The answer as a client compares it: status, Location and JSON body. */
const seen = (r: Reply) => ({ status: r.status, location: r.headers.get('location'), body: r.body });

describe('replaying a charge', () => {
  test.each([
    ['succeeded', { status: 201 }, 200, 'charged'],
    ['was declined (402)', { status: 402 }, 402, 'pending'],
    ['failed (502 charge_failed)', { status: 500 }, 502, 'pending'],
  ] as const)(
    'when a charge that %s is replayed with its key, then the same answer comes back and the fake saw one call',
    async (_what, behaviour, status, after) => {
      const id = await pendingOrder();
      const key = newKey();
      const before = fake.calls.length;
      fake.next(behaviour);
      const first = await charge(id, key);
      expect(first.status).toBe(status);
      expect(first.headers.get('idempotent-replayed')).toBeNull();

      const again = await charge(id, key);
      expect(seen(again)).toEqual(seen(first));
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
      if (status >= 400) expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(fake.calls.length).toBe(before + 1);
      expect(await storedOrder(app, id)).toMatchObject({ status: after });
      expect(await storedPayments(app, id)).toHaveLength(1);
    },
  );

  test('when a charge that timed out (504, in doubt) is replayed with its key, then the 504 comes back and nothing is sent again', async () => {
    const id = await pendingOrder();
    const key = newKey();
    const before = fake.calls.length;
    fake.next({ hang: true });
    const first = await charge(id, key);
    expect(first.status).toBe(504);
    fake.releaseHung(201);
    const again = await charge(id, key);
    expect(seen(again)).toEqual(seen(first));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(fake.calls.length).toBe(before + 1);
    expect(await storedPayments(app, id)).toMatchObject([{ state: 'in_doubt' }]);
    // A new attempt (a new key) meets the usual answer for a payment in doubt.
    expect((await charge(id, newKey())).body.code).toBe('payment_in_doubt');
  });

  test('when the same body is sent with its keys in another order, then it is the same request and is replayed', async () => {
    const key = newKey();
    const first = await app.call('POST', '/orders', {
      body: '{"customerEmail":"a@b","lineItems":[{"description":"Tea","priceCents":100,"quantity":1}]}',
      headers: { 'idempotency-key': key },
    });
    const again = await app.call('POST', '/orders', {
      body: '{ "lineItems": [ { "quantity": 1, "priceCents": 100, "description": "Tea" } ], "customerEmail": "a@b" }',
      headers: { 'idempotency-key': key },
    });
    expect(first.status).toBe(201);
    expect(seen(again)).toEqual(seen(first));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });
});

describe('creating an order without an id', () => {
  test('when POST /orders is retried with its key, then one order exists and both answers are the same 201 with the same Location', async () => {
    const key = newKey();
    const body = newOrder({ customerEmail: `${key}@example.com` });
    const first = await app.call('POST', '/orders', { body, headers: { 'idempotency-key': key } });
    const again = await app.call('POST', '/orders', { body, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`/orders/${first.body.order.id}`);
    expect(seen(again)).toEqual(seen(first));
    const rows = await app.db.execute<{ n: string }[]>('select count(*) as n from orders where customer_email = ?', [`${key}@example.com`]);
    expect(Number(rows[0].n)).toBe(1);
  });
  test('when ten creates with one key race, then one order exists and every answer is its 201 (or 409 idempotency_key_in_use)', async () => {
    const key = newKey();
    const body = newOrder({ customerEmail: `${key}@example.com` });
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => app.call('POST', '/orders', { body, headers: { 'idempotency-key': key } })),
    );
    const rows = await app.db.execute<{ id: string }[]>('select id from orders where customer_email = ?', [`${key}@example.com`]);
    expect(rows).toHaveLength(1);
    for (const r of replies) {
      if (r.status === 409) expect(r.body.code).toBe('idempotency_key_in_use');
      else expect({ status: r.status, id: r.body.order.id }).toEqual({ status: 201, id: rows[0].id });
    }
    expect(replies.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
  });

  test('when a keyed create is refused (409 order_exists), then the refusal is its answer and a retry replays it', async () => {
    const id = `exists-${newKey()}`;
    expect((await app.call('POST', '/orders', { body: newOrder({ id }) })).status).toBe(201);
    const key = newKey();
    const first = await app.call('POST', '/orders', { body: newOrder({ id }), headers: { 'idempotency-key': key } });
    expect(first.body.code).toBe('order_exists');
    const again = await app.call('POST', '/orders', { body: newOrder({ id }), headers: { 'idempotency-key': key } });
    expect(seen(again)).toEqual(seen(first));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });
});

describe('one key, one request', () => {
  test('when the key is reused with another body, then 422 idempotency_key_reused and nothing happens', async () => {
    const a = await pendingOrder();
    const b = await pendingOrder();
    const key = newKey();
    expect((await charge(a, key)).status).toBe(200);
    const before = fake.calls.length;
    for (const reuse of [charge(b, key), charge(a, key, 'tok_other')]) {
      const r = await reuse;
      expect(r.status).toBe(422);
      expect(r.body.code).toBe('idempotency_key_reused');
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, b)).toMatchObject({ status: 'pending', operation: null });
    expect(await storedPayments(app, b)).toEqual([]);
  });

  test('when the public site and staff use the same key, then each is its own: both run', async () => {
    const a = await pendingOrder();
    const b = await pendingOrder();
    const key = newKey();
    expect((await charge(a, key)).status).toBe(200);
    const cancel = await app.call('POST', `/orders/${b}/cancel`, { staff: true, body: {}, headers: { 'idempotency-key': key } });
    expect(cancel.status).toBe(200);
    expect(cancel.headers.get('idempotent-replayed')).toBeNull();
    expect(await storedOrder(app, b)).toMatchObject({ status: 'cancelled' });
  });

  test.each([
    ['has a space', 'a b'],
    ['is empty', ''],
    ['is longer than 255 characters', 'k'.repeat(256)],
    ['is not ASCII', 'clé'],
  ])('when the key %s, then 400 at /header/Idempotency-Key and nothing happens', async (_what, key) => {
    const id = await pendingOrder();
    const before = fake.calls.length;
    const r = await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_x' }, headers: { 'idempotency-key': key } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(r.body.errors).toEqual([expect.objectContaining({ path: '/header/Idempotency-Key' })]);
    expect(fake.calls.length).toBe(before);
    expect(await storedOrder(app, id)).toMatchObject({ status: 'pending' });
  });
});

describe('answers that are not kept', () => {
  test('when a request with a key was refused 400 or 401, then a retry with the key runs', async () => {
    const id = await pendingOrder();
    const key = newKey();
    const bad = await app.call('POST', '/orders', { body: { customerEmail: 'nope' }, headers: { 'idempotency-key': key } });
    expect(bad.status).toBe(400);
    expect((await app.call('POST', '/orders', { body: newOrder(), headers: { 'idempotency-key': key } })).status).toBe(201);

    const staffKey = newKey();
    const anonymous = await app.call('POST', `/orders/${id}/cancel`, { body: {}, headers: { 'idempotency-key': staffKey } });
    expect(anonymous.status).toBe(401);
    const cancel = await app.call('POST', `/orders/${id}/cancel`, { staff: true, body: {}, headers: { 'idempotency-key': staffKey } });
    expect(cancel.status).toBe(200);
    expect(cancel.headers.get('idempotent-replayed')).toBeNull();
  });

  test('when a cancel with a key met 409 operation_in_progress, then a retry with the key runs once the charge is done', async () => {
    const id = await pendingOrder();
    const key = newKey();
    fake.next({ status: 201, delayMs: 300 });
    const charging = charge(id, newKey());
    await fake.received(fake.calls.length + 1);
    const busy = await app.call('POST', `/orders/${id}/cancel`, { staff: true, body: {}, headers: { 'idempotency-key': key } });
    expect(busy.body.code).toBe('operation_in_progress');
    expect((await charging).status).toBe(200);
    const before = fake.calls.length;
    const cancel = await app.call('POST', `/orders/${id}/cancel`, { staff: true, body: {}, headers: { 'idempotency-key': key } });
    expect(cancel.status).toBe(200);
    expect(cancel.body.refundedCents).toBe(3300);
    expect(fake.calls.slice(before)).toEqual([{ cardToken: 'tok_visa_4242', amountCents: -3300 }]);
  });

  test('when a charge with a key met 503 charge_queue_full, then a retry with the key runs', async () => {
    const small = await startTestApp({
      databaseUrl: app.rt.databaseUrl,
      chargeUrl: fake.url,
      env: { ORDER_UP_CHARGE_QUEUE_MAX: '0', UPSTREAM_TIMEOUT_MS: '5000' },
    });
    try {
      const a = await pendingOrder();
      const b = await pendingOrder();
      const key = newKey();
      fake.next({ hang: true });
      const first = charge(a, newKey(), 'tok_visa_4242', small);
      await fake.received(fake.calls.length + 1);
      const full = await charge(b, key, 'tok_visa_4242', small);
      expect(full.status).toBe(503);
      expect(full.body.code).toBe('charge_queue_full');
      fake.releaseHung(201);
      expect((await first).status).toBe(200);
      const retry = await charge(b, key, 'tok_visa_4242', small);
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(await storedOrder(app, b)).toMatchObject({ status: 'charged' });
    } finally {
      await small.stop();
    }
  });
});

describe('a key in use', () => {
  test('when 20 requests with one key race through two app instances, then exactly one runs and the others get 409 idempotency_key_in_use or the replay', async () => {
    const other = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url, env: { UPSTREAM_TIMEOUT_MS: '5000' } });
    try {
      const id = await pendingOrder();
      const key = newKey();
      const before = fake.calls.length;
      fake.next({ status: 201, delayMs: 150 });
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => charge(id, key, 'tok_visa_4242', i % 2 === 0 ? app : other)));
      const ran = replies.filter((r) => r.status === 200 && r.headers.get('idempotent-replayed') === null);
      const replayed = replies.filter((r) => r.headers.get('idempotent-replayed') === 'true');
      const inUse = replies.filter((r) => r.status === 409);
      expect(ran).toHaveLength(1);
      expect(replayed.length + inUse.length).toBe(19);
      for (const r of replayed) expect(seen(r)).toEqual(seen(ran[0]));
      for (const r of inUse) {
        expect(r.body.code).toBe('idempotency_key_in_use');
        expect(r.headers.get('retry-after')).toBe('1');
      }
      expect(fake.calls.length).toBe(before + 1);
      expect(await storedPayments(app, id)).toMatchObject([{ state: 'succeeded' }]);
    } finally {
      await other.stop();
    }
  });

  test('when the process running a key is killed and another starts, then a retry with the key runs again and meets 409 payment_in_doubt, never a second charge', async () => {
    const server = await startChildServer({
      DATABASE_URL: app.rt.databaseUrl,
      CHARGE_SERVICE_URL: fake.url,
      FULFILLMENT_SERVICE_URL: fake.url,
      UPSTREAM_TIMEOUT_MS: '120000',
    });
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    const key = newKey();
    fake.next({ hang: true });
    const before = fake.calls.length;
    const lost = call(server.url, 'POST', `/orders/${id}/charge`, {
      body: { cardToken: 'tok_crash' },
      headers: { 'idempotency-key': key },
    }).catch(() => 'lost');
    await fake.received(before + 1);
    // While it runs, the key is in use everywhere.
    const meanwhile = await charge(id, key, 'tok_crash');
    expect(meanwhile.body.code).toBe('idempotency_key_in_use');

    server.child.kill('SIGKILL');
    await server.exited;
    expect(await lost).toBe('lost');
    fake.releaseHung(201);

    const later = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: fake.url });
    try {
      const retry = await charge(id, key, 'tok_crash', later);
      expect(retry.status).toBe(409);
      expect(retry.body.code).toBe('payment_in_doubt');
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      // That answer is the key's now.
      const replay = await charge(id, key, 'tok_crash', later);
      expect(seen(replay)).toEqual(seen(retry));
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(fake.calls.length).toBe(before + 1);
      expect(await storedPayments(app, id)).toMatchObject([{ state: 'in_doubt' }]);
    } finally {
      await later.stop();
    }
  });
});

describe('expiry', () => {
  test('when ORDER_UP_IDEMPOTENCY_TTL_HOURS is set, then a stored answer is kept that long', async () => {
    const short = await startTestApp({
      databaseUrl: app.rt.databaseUrl,
      chargeUrl: fake.url,
      env: { ORDER_UP_IDEMPOTENCY_TTL_HOURS: '0.5' },
    });
    try {
      const key = newKey();
      expect((await short.call('POST', '/orders', { body: newOrder(), headers: { 'idempotency-key': key } })).status).toBe(201);
      const [row] = await app.db.execute<{ seconds: number }[]>(
        'select extract(epoch from expires_at - created_at)::float as seconds from idempotency_keys where key = ?',
        [key],
      );
      expect(row.seconds).toBe(1800);
    } finally {
      await short.stop();
    }
  });

  test('when a key has expired, then a replay runs as a new request, and the purge removes expired answers', async () => {
    const id = await pendingOrder();
    const key = newKey();
    expect((await charge(id, key)).status).toBe(200);
    await app.db.execute(`update idempotency_keys set expires_at = now() - interval '1 second' where key = ?`, [key]);
    const before = fake.calls.length;
    const after = await charge(id, key);
    expect(after.status).toBe(409);
    expect(after.body.code).toBe('order_not_pending');
    expect(after.headers.get('idempotent-replayed')).toBeNull();
    expect(fake.calls.length).toBe(before);

    await app.db.execute(`update idempotency_keys set expires_at = now() - interval '1 second' where key = ?`, [key]);
    expect(await purgeExpiredKeys(app.rt.context())).toBeGreaterThanOrEqual(1);
    expect(await app.db.execute('select 1 from idempotency_keys where key = ?', [key])).toEqual([]);
  });
});

test('a staff token never ends up in a stored answer or key', async () => {
  const rows = await app.db.execute<{ caller: string; body: string }[]>('select caller, body from idempotency_keys');
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) {
    expect(row.caller).toMatch(/^(public|staff:[a-z0-9._-]+)$/);
    expect(`${row.caller}${row.body}`).not.toContain(STAFF_TOKEN);
    expect(row.body ?? '').not.toContain('tok_');
  }
});

describe('what a key costs', () => {
  test('when a create, a charge, a refunding cancel and a fulfill run with a key, then a create sends no statement more than without and the others exactly one: the answer is stored with the outcome', async () => {
    const fulfillment = await FakeFulfillmentService.start();
    // No gauge refresh during the test: every statement counted is the request's own.
    const own = await startTestApp({ chargeUrl: fake.url, fulfillmentUrl: fulfillment.url, inDoubtRefreshMs: 3_600_000 });
    try {
      const cost = async (send: (headers: Record<string, string>) => Promise<Reply>, key?: string) => {
        const before = own.rt.db.statements;
        const reply = await send(key ? { 'idempotency-key': key } : {});
        expect(reply.status).toBeLessThan(300);
        return { reply, statements: own.rt.db.statements - before };
      };
      const create = (headers: Record<string, string>) => own.call('POST', '/orders', { body: newOrder(), headers });
      const plain = await cost(create);
      // A create takes its key in the order's own statement: no statement more at all.
      const keyed = await cost(create, newKey());
      expect(keyed.statements).toBe(plain.statements);

      const [a, b] = [plain.reply.body.order.id as string, keyed.reply.body.order.id as string];
      for (const [path, body] of [
        ['charge', { cardToken: 'tok_visa_4242' }],
        ['fulfill', undefined],
      ] as const) {
        const unkeyed = await cost((headers) => own.call('POST', `/orders/${a}/${path}`, { body, headers, staff: path === 'fulfill' }));
        const withKey = await cost(
          (headers) => own.call('POST', `/orders/${b}/${path}`, { body, headers, staff: path === 'fulfill' }),
          newKey(),
        );
        expect({ path, statements: withKey.statements }).toEqual({ path, statements: unkeyed.statements + 1 });
      }
      // A cancel of a charged order refunds it.
      const [c, d] = [(await cost(create)).reply.body.order.id as string, (await cost(create)).reply.body.order.id as string];
      for (const id of [c, d])
        expect((await own.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa_4242' } })).status).toBe(200);
      const unkeyed = await cost((headers) => own.call('POST', `/orders/${c}/cancel`, { body: { reason: 'test' }, headers, staff: true }));
      const withKey = await cost(
        (headers) => own.call('POST', `/orders/${d}/cancel`, { body: { reason: 'test' }, headers, staff: true }),
        newKey(),
      );
      expect(withKey.reply.body.refundedCents).toBeGreaterThan(0);
      expect(withKey.statements).toBe(unkeyed.statements + 1);
      // And what was stored with the outcome is what a replay gives back.
      const rows = await own.db.execute<{ state: string; status: number }[]>(`select state, status from idempotency_keys`);
      expect(rows.map((r) => [r.state, r.status]).sort()).toEqual([
        ['done', 200],
        ['done', 200],
        ['done', 200],
        ['done', 201],
      ]);
    } finally {
      await own.stop();
      await fulfillment.stop();
    }
  });
});

// Staff identity and the order timeline: who did what to an order, written in the same
// transaction as the change, paged over HTTP - checked in the answers, the stored events, what the
// upstream fake received, and the logs.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadConfig, ConfigError } from '../src/config.js';
import { call, newOrder, startTestApp, STAFF_TOKEN, type TestApp } from './support/app.js';
import { startChildServer } from './support/child-server.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { LogCapture } from './support/log-capture.js';

const ALICE = 'alice-secret-token-1';
const BOB = 'bob-secret-token-2';
const bobDigest = createHash('sha256').update(BOB).digest('hex');

let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
let app: TestApp;
const logs = new LogCapture();

beforeAll(async () => {
  [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
  app = await startTestApp({
    chargeUrl: charge.url,
    fulfillmentUrl: fulfillment.url,
    env: { ORDER_UP_STAFF_TOKENS: `alice:${ALICE},bob:sha256:${bobDigest},${STAFF_TOKEN}` },
    logDestination: logs,
    logLevel: 'info',
  });
});
afterAll(async () => {
  charge.releaseHung();
  await app?.stop();
  await Promise.all([charge?.stop(), fulfillment?.stop()]);
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function timeline(id: string) {
  const r = await app.call('GET', `/orders/${id}/events?limit=500`, { staff: true });
  expect(r.status).toBe(200);
  expect(r.body.nextCursor).toBeNull();
  return r.body.events as {
    seq: number;
    at: string;
    type: string;
    actor: { kind: string; name?: string };
    requestId: string | null;
    data: Record<string, unknown>;
  }[];
}

describe('staff identity', () => {
  test('when ORDER_UP_STAFF_TOKENS names holders, then name:token, name:sha256:<hex> and a bare token are each accepted, and nothing else', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    for (const headers of [as(ALICE), as(BOB), as(STAFF_TOKEN)]) {
      expect((await app.call('GET', `/orders/${id}/events`, { headers })).status).toBe(200);
    }
    for (const headers of [as(bobDigest), as('alice'), as(`alice:${ALICE}`)]) {
      expect((await app.call('GET', `/orders/${id}/events`, { headers })).status).toBe(401);
    }
  });

  test('when an entry is malformed, then the configuration is refused naming its position, never its text', () => {
    for (const [entries, position] of [
      ['good,Bad Name:secret-1', 2],
      ['alice:sha256:abc', 1],
      ['a:b,c:', 2],
      [`ok,sha256:${'a'.repeat(64)}`, 2],
    ] as const) {
      let error: unknown;
      try {
        loadConfig({ ORDER_UP_STAFF_TOKENS: entries });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(String(error)).toContain(`entry ${position}`);
      expect(String(error)).not.toContain('secret');
      expect(String(error)).not.toContain('abc');
    }
  });
});

describe('the timeline', () => {
  test('when an order is created and charged by the customer and fulfilled by staff alice, then its events say exactly that, with actors, amounts and request ids', async () => {
    const created = await app.call('POST', '/orders', { body: newOrder(), headers: { 'x-request-id': 'req-create-1' } });
    const id = created.body.order.id as string;
    const charged = await app.call('POST', `/orders/${id}/charge`, {
      body: { cardToken: 'tok_timeline_1' },
      headers: { 'x-request-id': 'req-charge-1' },
    });
    expect(charged.status).toBe(200);
    const fulfilled = await app.call('POST', `/orders/${id}/fulfill`, { headers: { ...as(ALICE), 'x-request-id': 'req-fulfill-1' } });
    expect(fulfilled.status).toBe(200);

    const events = await timeline(id);
    expect(events.map((e) => [e.type, e.actor, e.requestId])).toEqual([
      ['order.created', { kind: 'customer' }, 'req-create-1'],
      ['charge.started', { kind: 'customer' }, 'req-charge-1'],
      ['charge.succeeded', { kind: 'customer' }, 'req-charge-1'],
      ['fulfillment.item', { kind: 'staff', name: 'alice' }, 'req-fulfill-1'],
      ['fulfillment.item', { kind: 'staff', name: 'alice' }, 'req-fulfill-1'],
      ['order.fulfilled', { kind: 'staff', name: 'alice' }, 'req-fulfill-1'],
    ]);
    expect(events[0].data).toEqual({ totalCents: 3300, lineItems: 2 });
    expect(events[1].data).toMatchObject({ kind: 'charge', amountCents: 3300 });
    expect(events[2].data).toMatchObject({ kind: 'charge', amountCents: 3300, paymentId: events[1].data.paymentId });
    expect(events.slice(3, 5).map((e) => e.data)).toEqual([
      { description: 'Tea', quantity: 2, outcome: 'fulfilled' },
      { description: 'Mug', quantity: 1, outcome: 'fulfilled' },
    ]);
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
    // The access log names the staff member, never the token.
    expect(logs.accessLines('req-fulfill-1')).toEqual([expect.objectContaining({ staff: 'alice', status: 200 })]);
  });

  test('when a refund fails and a retry succeeds, then both attempts are on the timeline, then the cancel with its reason', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_2' } })).status).toBe(200);
    charge.next({ status: 500 });
    const failed = await app.call('POST', `/orders/${id}/cancel`, { headers: as(ALICE), body: { reason: 'out of stock' } });
    expect(failed.body.code).toBe('charge_failed');
    const ok = await app.call('POST', `/orders/${id}/cancel`, { headers: as(BOB), body: { reason: 'out of stock' } });
    expect(ok.status).toBe(200);
    const events = await timeline(id);
    expect(events.map((e) => `${e.type} ${e.actor.name ?? e.actor.kind}`)).toEqual([
      'order.created customer',
      'charge.started customer',
      'charge.succeeded customer',
      'refund.started alice',
      'refund.failed alice',
      'refund.started bob',
      'refund.succeeded bob',
      'order.cancelled bob',
    ]);
    expect(events[4].data).toMatchObject({ kind: 'refund', amountCents: -3300, outcome: 'charge service answered 500' });
    expect(events[7].data).toEqual({ reason: 'out of stock', refundedCents: 3300 });
  });

  test('when the statement that changes an order fails, then no event of that change exists', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    await app.db.execute(
      `create function timeline_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`,
    );
    await app.db.execute(
      `create trigger timeline_refuse before update on orders for each row when (new.status = 'cancelled') execute function timeline_refuse()`,
    );
    try {
      const r = await app.call('POST', `/orders/${id}/cancel`, { staff: true, body: { reason: 'never written' } });
      expect(r.status).toBe(500);
    } finally {
      await app.db.execute('drop trigger timeline_refuse on orders');
      await app.db.execute('drop function timeline_refuse');
    }
    expect((await app.call('GET', `/orders/${id}`)).body.order.status).toBe('pending');
    expect((await timeline(id)).map((e) => e.type)).toEqual(['order.created']);
  });

  test('when events arrive while staff page through them, then every event is seen exactly once, oldest first', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_3' } });
    const seen: number[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const r = await app.call('GET', `/orders/${id}/events?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
        staff: true,
      });
      expect(r.status).toBe(200);
      seen.push(...r.body.events.map((e: { seq: number }) => e.seq));
      cursor = r.body.nextCursor;
      page += 1;
      // New events while paging: the fulfill adds three.
      if (page === 2) expect((await app.call('POST', `/orders/${id}/fulfill`, { staff: true })).status).toBe(200);
    } while (cursor);
    const all = (await timeline(id)).map((e) => e.seq);
    expect(all).toHaveLength(6);
    expect(seen).toEqual(all);
    const bad = await app.call('GET', `/orders/${id}/events?cursor=garbage`, { staff: true });
    expect(bad.body.errors).toEqual([expect.objectContaining({ path: '/query/cursor' })]);
    expect((await app.call('GET', '/orders/no-such-order/events', { staff: true })).body.code).toBe('order_not_found');
    expect((await app.call('GET', `/orders/${id}/events`)).status).toBe(401);
  });

  test("when a charge's process is killed mid-call and another recovers it, then the timeline shows the recovery by system, and a resolve by bob on the CLI shows bob", async () => {
    const server = await startChildServer({
      DATABASE_URL: app.rt.databaseUrl,
      CHARGE_SERVICE_URL: charge.url,
      FULFILLMENT_SERVICE_URL: fulfillment.url,
      UPSTREAM_TIMEOUT_MS: '120000',
    });
    const id = (await call(server.url, 'POST', '/orders', { body: newOrder() })).body.order.id as string;
    charge.next({ hang: true });
    const before = charge.calls.length;
    const lost = call(server.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_4' } }).catch(() => 'lost');
    await charge.received(before + 1);
    server.child.kill('SIGKILL');
    await server.exited;
    await lost;
    charge.releaseHung();

    const later = await startTestApp({ databaseUrl: app.rt.databaseUrl, chargeUrl: charge.url });
    await later.stop();
    let events = await timeline(id);
    expect(events.map((e) => `${e.type} ${e.actor.kind}`)).toEqual([
      'order.created customer',
      'charge.started customer',
      'operation.recovered system',
      'charge.in_doubt system',
    ]);
    const paymentId = events[1].data.paymentId as string;

    const resolved = await runCli(['payments', 'resolve', paymentId, '--succeeded', '--as', 'bob']);
    expect(resolved.code).toBe(0);
    events = await timeline(id);
    expect(events[events.length - 1]).toMatchObject({
      type: 'payment.resolved',
      actor: { kind: 'cli', name: 'bob' },
      requestId: null,
      data: { paymentId, kind: 'charge', outcome: 'succeeded', orderStatus: 'charged' },
    });
    expect(charge.calls.length).toBe(before + 1);

    // `orders show` prints the timeline under the order; --json has the same events.
    const shown = await runCli(['orders', 'show', id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /Timeline[\s\S]*customer\s+order\.created[\s\S]*system\s+charge\.in_doubt[\s\S]*cli:bob\s+payment\.resolved \(succeeded\)/,
    );
    const json = await runCli(['orders', 'show', id, '--json']);
    expect(JSON.parse(json.stdout).events.map((e: { type: string }) => e.type)).toEqual(events.map((e) => e.type));
  });
});

describe('where the money stands: order.payment', () => {
  test('when an order is created, declined, charged, then refunded, then each answer carrying it says where its money stands', async () => {
    const created = await app.call('POST', '/orders', { body: newOrder() });
    const id = created.body.order.id as string;
    expect(created.body.order.payment).toBeNull();
    charge.next({ status: 402 });
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_5' } })).status).toBe(402);
    expect((await app.call('GET', `/orders/${id}`)).body.order.payment).toEqual({ status: 'none', chargedCents: 0, refundedCents: 0 });
    const charged = await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_5' } });
    expect(charged.body.order.payment).toEqual({ status: 'charged', chargedCents: 3300, refundedCents: 0 });
    expect((await app.call('GET', `/orders/${id}`)).body.order.payment).toEqual(charged.body.order.payment);
    const cancelled = await app.call('POST', `/orders/${id}/cancel`, { staff: true });
    expect(cancelled.body.order.payment).toEqual({ status: 'refunded', chargedCents: 3300, refundedCents: 3300 });
    const listed = await app.call('GET', '/orders?status=cancelled&limit=500', { staff: true });
    expect(listed.body.orders.find((o: { id: string }) => o.id === id).payment).toEqual(cancelled.body.order.payment);
  });

  test('when a charge is in doubt, then GET /orders/{id} says so, since when, and a zero total has no payment at all', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    charge.next({ reset: true });
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_6' } })).body.code).toBe('payment_in_doubt');
    const order = (await app.call('GET', `/orders/${id}`)).body.order;
    expect(order.status).toBe('pending');
    expect(order.payment).toEqual({
      status: 'in_doubt',
      chargedCents: 0,
      refundedCents: 0,
      inDoubtSince: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    const free = (
      await app.call('POST', '/orders', { body: newOrder({ lineItems: [{ description: 'Gift', priceCents: 0, quantity: 1 }] }) })
    ).body.order.id as string;
    const zero = await app.call('POST', `/orders/${free}/charge`, { body: { cardToken: 'tok_timeline_7' } });
    expect(zero.body.order).toMatchObject({ status: 'charged', payment: null });
  });
});

describe('payments over HTTP, for the internal site', () => {
  test('when a charge is in doubt and staff alice resolve it over HTTP as failed, then the order is chargeable again and the timeline shows alice', async () => {
    const id = (await app.call('POST', '/orders', { body: newOrder() })).body.order.id as string;
    charge.next({ reset: true });
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_8' } })).body.code).toBe('payment_in_doubt');
    const listed = await app.call('GET', '/payments?status=in_doubt&limit=500', { headers: as(ALICE) });
    expect(listed.status).toBe(200);
    const payment = listed.body.payments.find((p: { orderId: string }) => p.orderId === id);
    expect(payment).toEqual({
      id: expect.any(String),
      orderId: id,
      kind: 'charge',
      amountCents: 3300,
      status: 'in_doubt',
      startedAt: expect.any(String),
      outcome: 'connection broke after the request was sent',
    });
    expect(JSON.stringify(listed.body)).not.toContain('tok_');

    const before = charge.calls.length;
    const resolved = await app.call('POST', `/payments/${payment.id}/resolve`, {
      headers: as(ALICE),
      body: { outcome: 'failed', note: 'not in the dashboard' },
    });
    expect(resolved.status).toBe(200);
    expect(resolved.body.payment).toMatchObject({ id: payment.id, status: 'failed' });
    expect(resolved.body.order).toMatchObject({ id, status: 'pending', payment: { status: 'none', chargedCents: 0, refundedCents: 0 } });
    expect(charge.calls.length).toBe(before);
    const events = await timeline(id);
    expect(events[events.length - 1]).toMatchObject({
      type: 'payment.resolved',
      actor: { kind: 'staff', name: 'alice' },
      data: { paymentId: payment.id, outcome: 'failed', orderStatus: 'pending', note: 'not in the dashboard' },
    });
    // Chargeable again.
    expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_timeline_8' } })).status).toBe(200);

    // Resolving what is not in doubt changes nothing.
    const again = await app.call('POST', `/payments/${payment.id}/resolve`, { headers: as(ALICE), body: { outcome: 'succeeded' } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('payment_not_in_doubt');
    expect((await app.call('GET', `/orders/${id}`)).body.order.status).toBe('charged');
    expect((await timeline(id)).filter((e) => e.type === 'payment.resolved')).toHaveLength(1);
  });

  test('when payments are listed a page at a time, then each appears once; an unknown or malformed payment ID is 404; no token, 401', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await app.call('GET', `/payments?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { staff: true });
      expect(r.status).toBe(200);
      seen.push(...r.body.payments.map((p: { id: string }) => p.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    const [{ n }] = await app.db.execute<{ n: string }[]>('select count(*) as n from payments');
    expect(seen).toHaveLength(Number(n));
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const r = await app.call('POST', `/payments/${id}/resolve`, { staff: true, body: { outcome: 'failed' } });
      expect([r.status, r.body.code]).toEqual([404, 'payment_not_found']);
    }
    expect((await app.call('GET', '/payments?cursor=nope', { staff: true })).body.errors).toEqual([
      expect.objectContaining({ path: '/query/cursor' }),
    ]);
    expect((await app.call('GET', '/payments')).status).toBe(401);
    expect((await app.call('POST', `/payments/${seen[0]}/resolve`, { body: { outcome: 'failed' } })).status).toBe(401);
  });
});

test('no event and no log line holds a card token or a staff token', async () => {
  const rows = await app.db.execute<{ text: string }[]>('select row_to_json(e)::text as text from order_events e');
  expect(rows.length).toBeGreaterThan(10);
  const everything = rows.map((r) => r.text).join('\n') + logs.lines.join('\n');
  expect(everything).not.toMatch(/tok_timeline/);
  for (const secret of [ALICE, BOB, bobDigest, STAFF_TOKEN]) expect(everything).not.toContain(secret);
});

/** The built CLI (`make build` first) on the test's database. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('bin/order-up.js'), ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: app.rt.databaseUrl,
        CHARGE_SERVICE_URL: charge.url,
        FULFILLMENT_SERVICE_URL: fulfillment.url,
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

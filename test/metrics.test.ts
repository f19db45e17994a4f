// GET /metrics (src/metrics.ts): scraped over HTTP like Prometheus does, and parsed as the
// Prometheus text format - every sample line `name{label="value",...} value` - never grepped.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ConfigError, loadConfig } from '../src/config.js';
import { resolvePayment } from '../src/domain/in-doubt.js';
import { call, newOrder, startTestApp, STAFF_TOKEN, type TestApp } from './support/app.js';
import { DbProxy } from './support/db-proxy.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { freshDatabaseUrl } from './support/test-db.js';

let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
/** Upstream calls time out after 300 ms; the in-doubt gauge is read every 200 ms. */
let app: TestApp;
/** Untouched until its tests run; serves the metrics without a token on METRICS_PORT; reads the in-doubt gauge every minute. */
let quiet: TestApp;

beforeAll(async () => {
  [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
  [app, quiet] = await Promise.all([
    startTestApp({ chargeUrl: charge.url, fulfillmentUrl: fulfillment.url, env: { UPSTREAM_TIMEOUT_MS: '300' }, inDoubtRefreshMs: 200 }),
    startTestApp({ chargeUrl: charge.url, fulfillmentUrl: fulfillment.url, env: { METRICS_PORT: '0' }, inDoubtRefreshMs: 60_000 }),
  ]);
});

afterAll(async () => {
  charge?.releaseHung();
  fulfillment?.releaseHung();
  await app?.stop();
  await quiet?.stop();
  await Promise.all([charge?.stop(), fulfillment?.stop()]);
});

// ---- the Prometheus text format, parsed ------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

class Scrape {
  constructor(
    readonly samples: Sample[],
    /** `# TYPE` of each metric family. */
    readonly types: Map<string, string>,
  ) {}

  /** The value of the one sample `name` whose labels include `labels`; fails unless there is exactly one. */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found.length !== 1)
      throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}: ${JSON.stringify(found)}`);
    return found[0].value;
  }

  /** The distinct label sets of the samples `name`, each as a stable string. */
  series(name: string): Set<string> {
    return new Set(this.samples.filter((s) => s.name === name).map((s) => labelKey(s.labels)));
  }
}

const labelKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`).
const SPECIAL = /^(?:nan|[+-]?inf(?:inity)?)$/i;
const special = (raw: string) => (/^nan$/i.test(raw) ? NaN : raw.startsWith('-') ? -Infinity : Infinity);
const ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n' };

/** Parses the Prometheus text exposition format (0.0.4); anything malformed throws, naming the line. */
function parseExposition(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`metrics line ${i + 1}: ${why}: ${line}`);
    };
    if (line === '') return;
    if (line.startsWith('#')) {
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) types.set(type[1], type[2]);
      else if (!/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) fail('not a HELP or TYPE comment');
      return;
    }
    const name = METRIC_NAME.exec(line)?.[0] ?? fail('no metric name');
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos += 1;
      while (line[pos] !== '}') {
        const label = LABEL_NAME.exec(line.slice(pos))?.[0] ?? fail(`no label name at ${pos}`);
        pos += label.length;
        if (line.slice(pos, pos + 2) !== '="') fail(`no =" after label ${label}`);
        pos += 2;
        let value = '';
        for (;;) {
          const c = line[pos++] ?? fail(`unterminated value of label ${label}`);
          if (c === '"') break;
          value += c === '\\' ? (ESCAPES[line[pos++]] ?? fail(`bad escape in label ${label}`)) : c;
        }
        if (label in labels) fail(`label ${label} twice`);
        labels[label] = value;
        if (line[pos] === ',') pos += 1;
        else if (line[pos] !== '}') fail(`no , or } after label ${label}`);
      }
      pos += 1;
    }
    if (line[pos] !== ' ') fail('no space before the value');
    const [raw, timestamp, ...extra] = line.slice(pos + 1).split(' ');
    if (extra.length > 0 || (timestamp !== undefined && !/^-?\d+$/.test(timestamp))) fail('trailing garbage');
    const value = SPECIAL.test(raw) ? special(raw) : NUMBER.test(raw) ? Number(raw) : fail(`bad value ${raw}`);
    samples.push({ name, labels, value });
  });
  return new Scrape(samples, types);
}

/** GET /metrics on the API port with the staff token, parsed. */
async function scrape(target: TestApp): Promise<Scrape> {
  const res = await fetch(`${target.url}/metrics`, { headers: { authorization: `Bearer ${STAFF_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** Scrapes until `check` holds (it may throw meanwhile), or fails after `ms`. */
async function eventually<T>(target: TestApp, check: (s: Scrape) => T, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await scrape(target);
    try {
      const result = check(s);
      if (result !== false) return result;
      if (Date.now() > deadline) throw new Error('the condition never held');
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- helpers ---------------------------------------------------------------------------------

const CHARGE_KINDS = ['charge', 'refund'];
const CHARGE_OUTCOMES = ['succeeded', 'declined', 'failed', 'in_doubt'];
const FULFILLMENT_OUTCOMES = ['succeeded', 'failed', 'timeout'];

async function pendingOrder(target: TestApp, body: Record<string, unknown> = {}): Promise<string> {
  const res = await target.call('POST', '/orders', { body: newOrder(body) });
  expect(res.status).toBe(201);
  return res.body.order.id as string;
}

const chargeOrder = (target: TestApp, id: string) =>
  target.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_metrics_4242' } });

/** Every charge_calls_total combination as `kind/outcome` -> value. */
function chargeCalls(s: Scrape): Record<string, number> {
  return Object.fromEntries(
    CHARGE_KINDS.flatMap((kind) =>
      CHARGE_OUTCOMES.map((outcome) => [`${kind}/${outcome}`, s.value('order_up_charge_calls_total', { kind, outcome })]),
    ),
  );
}

// ---- the tests -------------------------------------------------------------------------------

describe('at start', () => {
  test('when nothing has happened yet, then every labelled counter is exported at 0 for each kind and outcome, with the gauges and the default metrics', async () => {
    const s = await scrape(quiet);
    for (const kind of CHARGE_KINDS) {
      for (const outcome of CHARGE_OUTCOMES)
        expect({ kind, outcome, value: s.value('order_up_charge_calls_total', { kind, outcome }) }).toEqual({ kind, outcome, value: 0 });
      expect(s.value('order_up_charge_call_duration_seconds_count', { kind })).toBe(0);
    }
    for (const outcome of FULFILLMENT_OUTCOMES)
      expect({ outcome, value: s.value('order_up_fulfillment_calls_total', { outcome }) }).toEqual({ outcome, value: 0 });
    expect(s.series('order_up_charge_calls_total').size).toBe(CHARGE_KINDS.length * CHARGE_OUTCOMES.length);
    expect(s.series('order_up_fulfillment_calls_total').size).toBe(FULFILLMENT_OUTCOMES.length);
    expect(s.value('order_up_charge_lock_wait_seconds_count')).toBe(0);
    expect(s.value('order_up_charge_queue_waiting')).toBe(0);
    expect(s.value('order_up_payments_in_doubt')).toBe(0);
    expect(s.value('order_up_lease_held')).toBe(1);
    expect(
      Object.fromEntries(
        [
          'http_request_duration_seconds',
          'order_up_charge_queue_waiting',
          'order_up_charge_calls_total',
          'order_up_charge_call_duration_seconds',
          'order_up_charge_lock_wait_seconds',
          'order_up_fulfillment_calls_total',
          'order_up_payments_in_doubt',
          'order_up_lease_held',
        ].map((name) => [name, s.types.get(name)]),
      ),
    ).toEqual({
      http_request_duration_seconds: 'histogram',
      order_up_charge_queue_waiting: 'gauge',
      order_up_charge_calls_total: 'counter',
      order_up_charge_call_duration_seconds: 'histogram',
      order_up_charge_lock_wait_seconds: 'histogram',
      order_up_fulfillment_calls_total: 'counter',
      order_up_payments_in_doubt: 'gauge',
      order_up_lease_held: 'gauge',
    });
    // collectDefaultMetrics, on this app's own registry.
    expect(s.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(s.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(s.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });
});

describe('who may scrape', () => {
  test('when /metrics is asked for on the API port without a staff token (or with a wrong one), then 401 unauthorized problem+json', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-the-token' }] as Record<string, string>[]) {
      const r = await call(quiet.url, 'GET', '/metrics', { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(r.body).toMatchObject({ status: 401, code: 'unauthorized' });
    }
  });

  test('when METRICS_PORT is set, then the same metrics are served on that port without a token, as text/plain, and nothing else is', async () => {
    const port = quiet.server.metrics?.port;
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(Number(new URL(quiet.url).port));
    const base = `http://127.0.0.1:${port}`;
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = parseExposition(await res.text());
    expect(s.value('order_up_charge_calls_total', { kind: 'charge', outcome: 'succeeded' })).toBe(0);
    expect(s.value('order_up_lease_held')).toBe(1);
    // Only the metrics: not the API, not another method.
    expect((await fetch(`${base}/orders`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    // Without METRICS_PORT there is no such server.
    expect(app.server.metrics).toBeUndefined();
  });

  test('when METRICS_PORT is unset or empty, then there is no metrics port; when it is not a port, then the configuration is refused like PORT', () => {
    expect(loadConfig({}).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '' }).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    for (const bad of ['http', '-1', '65536', '94.64']) expect(() => loadConfig({ METRICS_PORT: bad })).toThrow(ConfigError);
  });

  test('when charges wait behind one in flight, then order_up_charge_queue_waiting counts them', async () => {
    const [first, second, third] = [await pendingOrder(quiet), await pendingOrder(quiet), await pendingOrder(quiet)];
    const calls = charge.calls.length;
    charge.next({ hang: true });
    const answers = [chargeOrder(quiet, first)];
    await charge.received(calls + 1);
    answers.push(chargeOrder(quiet, second), chargeOrder(quiet, third));
    await eventually(quiet, (s) => s.value('order_up_charge_queue_waiting') === 2);
    charge.releaseHung();
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual([200, 200, 200]);
    await eventually(quiet, (s) => s.value('order_up_charge_queue_waiting') === 0);
  });
});

describe('charge and fulfillment calls', () => {
  test('when charges succeed, are declined (402), fail (500) and time out, and a refund succeeds, then order_up_charge_calls_total moves by exactly those counts, and the duration histograms by the number of calls', async () => {
    const ids = [];
    for (let i = 0; i < 5; i += 1) ids.push(await pendingOrder(app));
    const before = await scrape(app);
    const calls = charge.calls.length;

    charge.next({ status: 201 }, { status: 201 }, { status: 402 }, { status: 500 }, { hang: true });
    const statuses = [];
    for (const id of ids) statuses.push((await chargeOrder(app, id)).status);
    expect(statuses).toEqual([200, 200, 402, 502, 504]);
    // The timed-out call stays in flight until the service answers; let it answer late.
    charge.releaseHung();
    const refund = await app.call('POST', `/orders/${ids[0]}/cancel`, { staff: true, body: { reason: 'metrics test' } });
    expect(refund.status).toBe(200);
    expect(refund.body.refundedCents).toBe(3300);
    expect(charge.calls.length).toBe(calls + 6);

    const after = await scrape(app);
    const moved = Object.fromEntries(Object.entries(chargeCalls(after)).map(([k, v]) => [k, v - chargeCalls(before)[k]]));
    expect(moved).toEqual({
      'charge/succeeded': 2,
      'charge/declined': 1,
      'charge/failed': 1,
      'charge/in_doubt': 1,
      'refund/succeeded': 1,
      'refund/declined': 0,
      'refund/failed': 0,
      'refund/in_doubt': 0,
    });
    // Each call is timed once it is over (the timed-out one when its late answer came).
    const timed = (s: Scrape, kind: string) =>
      s.value('order_up_charge_call_duration_seconds_count', { kind }) -
      before.value('order_up_charge_call_duration_seconds_count', { kind });
    const s = await eventually(app, (x) => {
      expect({ charge: timed(x, 'charge'), refund: timed(x, 'refund') }).toEqual({ charge: 5, refund: 1 });
      return x;
    });
    // The timed-out call alone took more than the 300 ms timeout.
    expect(
      s.value('order_up_charge_call_duration_seconds_sum', { kind: 'charge' }) -
        before.value('order_up_charge_call_duration_seconds_sum', { kind: 'charge' }),
    ).toBeGreaterThan(0.3);
    expect(s.value('order_up_charge_call_duration_seconds_bucket', { kind: 'charge', le: '+Inf' })).toBe(
      s.value('order_up_charge_call_duration_seconds_count', { kind: 'charge' }),
    );
    // Every call waited for the cross-process lock once.
    expect(s.value('order_up_charge_lock_wait_seconds_count') - before.value('order_up_charge_lock_wait_seconds_count')).toBe(6);
  });

  test('when line items are fulfilled, fail and time out, then order_up_fulfillment_calls_total moves by exactly those counts', async () => {
    const id = await pendingOrder(app, {
      lineItems: [
        { description: 'Fine A', priceCents: 100, quantity: 1 },
        { description: 'Fine B', priceCents: 100, quantity: 1 },
        { description: 'Broken', priceCents: 100, quantity: 1 },
        { description: 'Stuck', priceCents: 100, quantity: 1 },
      ],
    });
    expect((await chargeOrder(app, id)).status).toBe(200);
    const before = await scrape(app);
    fulfillment.fail('Broken', 500).fail('Stuck', 'hang');
    try {
      expect((await app.call('POST', `/orders/${id}/fulfill`, { staff: true })).status).toBe(504);
    } finally {
      fulfillment.heal();
      fulfillment.releaseHung();
    }
    const after = await scrape(app);
    const moved = (outcome: string) =>
      after.value('order_up_fulfillment_calls_total', { outcome }) - before.value('order_up_fulfillment_calls_total', { outcome });
    expect({ succeeded: moved('succeeded'), failed: moved('failed'), timeout: moved('timeout') }).toEqual({
      succeeded: 2,
      failed: 1,
      timeout: 1,
    });
  });
});

describe('the request histogram', () => {
  test('when 50 unknown paths and 50 unknown order IDs are requested, then the number of http_request_duration_seconds series does not grow with them', async () => {
    await scrape(app); // so the scrape's own series exists before we count
    const before = await scrape(app);
    const seriesBefore = before.series('http_request_duration_seconds_count');
    const unmatched404 = { method: 'GET', route: 'unmatched', status: '404' };
    const order404 = { method: 'GET', route: '/orders/{id}', status: '404' };
    const countOf = (s: Scrape, labels: Record<string, string>) =>
      s.series('http_request_duration_seconds_count').has(labelKey(labels)) ? s.value('http_request_duration_seconds_count', labels) : 0;

    const tag = Date.now().toString(36);
    const sent: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      const path = `/no-such-thing-${tag}-${i}/x${i}`;
      const id = `metrics-${tag}-${i}`;
      sent.push(path, id);
      expect((await app.call('GET', path)).status).toBe(404);
      expect((await app.call('GET', `/orders/${id}`)).status).toBe(404);
    }

    const after = await scrape(app);
    const seriesAfter = after.series('http_request_duration_seconds_count');
    const added = [...seriesAfter].filter((k) => !seriesBefore.has(k));
    expect(added.length).toBeLessThanOrEqual(2);
    for (const k of added) expect([labelKey(unmatched404), labelKey(order404)]).toContain(k);
    expect(countOf(after, unmatched404) - countOf(before, unmatched404)).toBe(50);
    expect(countOf(after, order404) - countOf(before, order404)).toBe(50);
    // No label value is a raw path or an ID: routes are the spec's templates, "unmatched", or the docs asset.
    const routes = new Set(after.samples.filter((x) => x.name.startsWith('http_request_duration_seconds')).map((x) => x.labels.route));
    for (const route of routes)
      expect(route === 'unmatched' || route === '/docs/redoc.standalone.js' || /^\/[a-z/.{}]*$/.test(route)).toBe(true);
    const everyLabel = after.samples.flatMap((x) => Object.values(x.labels)).join('\n');
    for (const raw of sent) expect(everyLabel).not.toContain(raw);
    expect(everyLabel).not.toContain(STAFF_TOKEN);
    expect(everyLabel).not.toContain('@');
  });

  test('when a routed request is answered, then it is counted under its method, template and status', async () => {
    const id = await pendingOrder(app);
    const labels = { method: 'GET', route: '/orders/{id}', status: '200' };
    const before = await scrape(app);
    const count = (s: Scrape) =>
      s.series('http_request_duration_seconds_count').has(labelKey(labels)) ? s.value('http_request_duration_seconds_count', labels) : 0;
    for (let i = 0; i < 3; i += 1) expect((await app.call('GET', `/orders/${id}`)).status).toBe(200);
    expect(count(await scrape(app)) - count(before)).toBe(3);
    // A staff endpoint's 401 is routed too (the token is checked after routing).
    await call(app.url, 'GET', '/orders');
    const s = await scrape(app);
    expect(s.value('http_request_duration_seconds_count', { method: 'GET', route: '/orders', status: '401' })).toBeGreaterThanOrEqual(1);
  });
});

describe('payments in doubt and the lease', () => {
  test('when a payment is in doubt, then within 15 s order_up_payments_in_doubt shows it, and after staff resolve it, it goes back', async () => {
    const start = await scrape(app);
    const before = start.value('order_up_payments_in_doubt');
    const id = await pendingOrder(app);
    charge.next({ reset: true });
    const r = await chargeOrder(app, id);
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('payment_in_doubt');
    await eventually(app, (s) => s.value('order_up_payments_in_doubt') === before + 1, 15_000);

    const [payment] = await app.db.execute<{ id: string }[]>(`select id from payments where order_id = ? and state = 'in_doubt'`, [id]);
    await resolvePayment(app.rt.context(), payment.id, false);
    await eventually(app, (s) => s.value('order_up_payments_in_doubt') === before, 15_000);
  });

  test('when a payment goes in doubt between two reads, then scrapes show the last read value: scraping never queries the database', async () => {
    const before = (await scrape(quiet)).value('order_up_payments_in_doubt');
    const id = await pendingOrder(quiet);
    charge.next({ reset: true });
    expect((await chargeOrder(quiet, id)).status).toBe(502);
    for (let i = 0; i < 3; i += 1) expect((await scrape(quiet)).value('order_up_payments_in_doubt')).toBe(before);
  });

  test('when the process loses its database, then order_up_lease_held is 0 and scrapes still answer; when the database is back, it is 1 again', async () => {
    const databaseUrl = await freshDatabaseUrl('metrics_lease');
    const proxy = await DbProxy.start(databaseUrl);
    const cut = await startTestApp({
      databaseUrl: proxy.urlFor(databaseUrl),
      env: { ORDER_UP_LEASE_PING_MS: '100' },
      inDoubtRefreshMs: 100,
    });
    try {
      expect((await scrape(cut)).value('order_up_lease_held')).toBe(1);
      proxy.cut();
      await eventually(cut, (s) => s.value('order_up_lease_held') === 0);
      proxy.restore();
      await eventually(cut, (s) => s.value('order_up_lease_held') === 1, 15_000);
    } finally {
      proxy.restore();
      await cut.stop();
      await proxy.stop();
    }
  });
});

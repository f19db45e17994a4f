// `make bench` (BENCH=request): what order-up's request path costs. Three servers answer the same
// requests on the same PostgreSQL, each in a process of its own:
//   plain     node:http + pg, one prepared statement per request (plain-server.ts): the floor
//   lean      order-up's stack without order-up: express, openapi-backend, pino, pg (lean-server.ts)
//   order-up  `order-up serve` from the build
// For each scenario they take turns (plain, lean, order-up, plain, ...) for BENCH_ROUNDS rounds of
// BENCH_SECONDS, so a drift of this small shared machine hits all three alike; medians and the
// ratios to plain are printed, ratio first. Then order-up's memory over two mixes of POST and GET:
// a second mix that peaks higher than the first hints at a leak.
//
// Env: BENCH_ROUNDS (2), BENCH_SECONDS (5), BENCH_CONNECTIONS (32), BENCH_WARMUP_SECONDS (2),
// BENCH_MIX_SECONDS (20), BENCH_SEED_ORDERS (2000), BENCH_WORKERS (passes --workers N to order-up),
// BENCH_SERVER_NODE_ARGS (to order-up's node, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`; see
// analyze-profile.mjs), BENCH_KEEP_LOGS=1 (keep the servers' logs), DATABASE_URL (else an embedded
// PostgreSQL).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type autocannon from 'autocannon';
import pg from 'pg';
import { createDatabase, redactUrl, startEmbeddedDatabase } from '../../src/db/embedded/index.js';
import { load, median, type Run } from './load.js';
import { runNode, sampleRss, startChildServer, treeRss, type ChildServer } from './processes.js';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ROUNDS = num('BENCH_ROUNDS', 2);
const SECONDS = num('BENCH_SECONDS', 5);
const CONNECTIONS = num('BENCH_CONNECTIONS', 32);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const MIX_SECONDS = num('BENCH_MIX_SECONDS', 20);
const SEED_ORDERS = num('BENCH_SEED_ORDERS', 2000);
const WORKERS = process.env.BENCH_WORKERS;
const NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test/bench
const ROOT = path.resolve(here, '../../..');
const ORDER_UP = path.join(ROOT, 'bin', 'order-up.js');
const DB_NAME = 'order_up_bench_request';
const STAFF_TOKEN = 'bench-staff-token';
const NEW_ORDER = {
  customerEmail: 'ada@example.com',
  lineItems: [
    { description: 'Blue mug', priceCents: 1000, quantity: 2 },
    { description: 'Tea sampler', priceCents: 1450, quantity: 1 },
  ],
};
const SERVERS = ['plain', 'lean', 'order-up'] as const;
type ServerName = (typeof SERVERS)[number];

const out = (line = '') => process.stdout.write(`${line}\n`);
const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Whatever was started is stopped again, last first: on success, on failure and on Ctrl-C.
const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const stop of cleanups.reverse()) await stop().catch((err: unknown) => process.stderr.write(`cleanup: ${String(err)}\n`));
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`${signal}: stopping the servers and the database\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

function printHeader(): void {
  const settings = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v = '']) => `${k}=${/[\s"'$]/.test(v) ? `'${v}'` : v} `)
    .join('');
  const db = process.env.DATABASE_URL ? `DATABASE_URL=${redactUrl(process.env.DATABASE_URL)} ` : '';
  out(`request path: plain, lean and order-up on one PostgreSQL, load from autocannon in this process - all on this machine`);
  out(`command: ${db}${settings}node ${path.relative(process.cwd(), process.argv[1])}`);
  out(
    `machine: nproc ${os.availableParallelism()}, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${mb(os.totalmem())} RAM, ` +
      `node ${process.version}, ${os.type()} ${os.release()}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  out(
    `settings: ${ROUNDS} round(s) x ${SECONDS} s per server and scenario (after ${WARMUP} s warm-up), ${CONNECTIONS} connections, ` +
      `${SEED_ORDERS} seeded orders, memory mix 2 x ${MIX_SECONDS} s${WORKERS ? `, order-up --workers ${WORKERS}` : ''}`,
  );
}

/** DATABASE_URL's server, or the embedded one charge-pipeline.ts uses; a fresh database on it either way. */
async function openDatabase(): Promise<string> {
  if (process.env.DATABASE_URL) return createDatabase(process.env.DATABASE_URL, DB_NAME);
  const db = await startEmbeddedDatabase({ dataDir: path.join(ROOT, '.test-db', 'bench') });
  cleanups.push(() => db.stop());
  return createDatabase(db.url.replace(/\/[^/]*$/, '/postgres'), DB_NAME);
}

/** SEED_ORDERS orders like NEW_ORDER (two line items each), in one statement; answers their ids, shuffled. */
async function seed(databaseUrl: string): Promise<string[]> {
  const ids = Array.from({ length: SEED_ORDERS }, () => randomBytes(16).toString('base64url'));
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `with o as (
         insert into orders (id, customer_email, status, total_cents, created_at, updated_at)
         select id, 'seed' || n || '@example.com', 'pending', 3450, now(), now() from unnest($1::text[]) with ordinality as t(id, n)
         returning id)
       insert into line_items (order_id, position, description, price_cents, quantity)
       select o.id, i.position, i.description, i.price_cents, i.quantity
       from o, (values (0, 'Blue mug', 1000, 2), (1, 'Tea sampler', 1450, 1)) as i(position, description, price_cents, quantity)`,
      [ids],
    );
    await client.query('analyze orders; analyze line_items');
  } finally {
    await client.end();
  }
  // Shuffled, so the GETs do not walk the table in the order it was written.
  for (let i = ids.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}

async function startServers(databaseUrl: string, logDir: string): Promise<Record<ServerName, ChildServer>> {
  const start = async (name: ServerName, args: string[], env: Record<string, string>) => {
    const server = await startChildServer(name, args, { DATABASE_URL: databaseUrl, ...env }, path.join(logDir, `${name}.log`));
    cleanups.push(() => server.stop());
    return server;
  };
  return {
    plain: await start('plain', [path.join(here, 'plain-server.js')], { STAFF_TOKEN }),
    lean: await start('lean', [path.join(here, 'lean-server.js')], { STAFF_TOKEN }),
    'order-up': await start(
      'order-up',
      [...NODE_ARGS, ORDER_UP, 'serve', '--port', '0', '--no-migrate', ...(WORKERS ? ['--workers', WORKERS] : [])],
      {
        ORDER_UP_STAFF_TOKENS: STAFF_TOKEN,
        LOG_LEVEL: 'info',
        // Never called by these requests; port 9 (discard) so a stray call fails at once.
        CHARGE_SERVICE_URL: 'http://127.0.0.1:9',
        FULFILLMENT_SERVICE_URL: 'http://127.0.0.1:9',
      },
    ),
  };
}

/**
 * Before measuring: every server answers each scenario's request as expected, and the same seeded
 * order identically, so the three do comparable work (and a broken baseline cannot look fast).
 */
async function smokeCheck(servers: Record<ServerName, ChildServer>, seededId: string): Promise<void> {
  const shapes = new Map<string, ServerName[]>();
  for (const name of SERVERS) {
    const { url } = servers[name];
    const expect = async (what: string, res: Response, status: number) => {
      if (res.status !== status) throw new Error(`${name}: ${what} answered ${res.status}, expected ${status}: ${await res.text()}`);
      return res;
    };
    const created = await expect(
      'POST /orders',
      await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(NEW_ORDER) }),
      201,
    );
    const location = created.headers.get('location') ?? '';
    const { order } = (await created.json()) as { order: Record<string, unknown> };
    if (location !== `/orders/${String(order.id)}`)
      throw new Error(`${name}: POST /orders answered Location ${location} for order ${String(order.id)}`);
    const read = (await (await expect('GET /orders/{id}', await fetch(`${url}${location}`), 200)).json()) as {
      order: Record<string, unknown>;
    };
    if (JSON.stringify(read.order) !== JSON.stringify(order)) throw new Error(`${name}: GET ${location} differs from what POST answered`);
    await expect('GET /orders without a token', await fetch(`${url}/orders?limit=100`), 401);
    const page = (await (
      await expect('GET /orders', await fetch(`${url}/orders?limit=100`, { headers: { authorization: `Bearer ${STAFF_TOKEN}` } }), 200)
    ).json()) as {
      orders: unknown[];
    };
    if (page.orders.length !== 100) throw new Error(`${name}: GET /orders?limit=100 answered ${page.orders.length} orders`);
    const seeded = await (await expect('GET /orders/{id}', await fetch(`${url}/orders/${seededId}`), 200)).text();
    const shape = `${JSON.stringify(JSON.parse(seeded))} / ${Object.keys(order).join(',')} / ${Object.keys(page).join(',')}`;
    shapes.set(shape, [...(shapes.get(shape) ?? []), name]);
  }
  if (shapes.size > 1)
    throw new Error(`the servers answer orders differently: ${[...shapes].map(([s, n]) => `${n.join(', ')}: ${s}`).join('; ')}`);
}

const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(2));
const summary = (run: Run) =>
  `${Math.round(run.rps)} req/s  p99 ${run.p99} ms  CPU per request: server ${ms(run.serverCpu)} ms, PostgreSQL ${ms(run.dbCpu)} ms  ` +
  `other processes ${Math.round(run.others * 100)}% of the machine` +
  (run.failed > 0 ? `  FAILED: ${run.failures}` : '');

interface Scenario {
  label: string;
  requests: autocannon.Request[];
}

/**
 * GET of the seeded orders, one after the other (in a shuffled order) across all connections. The
 * path is set as each request is sent: a list of 2,000 prebuilt requests would be built again for
 * every connection when a run starts, which took most of a second of the measured time.
 */
function getOrders(ids: string[]): autocannon.Request {
  let next = 0;
  return { method: 'GET', setupRequest: (request) => ({ ...request, path: `/orders/${ids[(next += 1) % ids.length]}` }) };
}

const POST_ORDER: autocannon.Request = {
  method: 'POST',
  path: '/orders',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(NEW_ORDER),
};

/** POST /orders with a new Idempotency-Key on every request (the key's answer is stored with the order). */
function postKeyed(): autocannon.Request {
  let next = 0;
  return {
    ...POST_ORDER,
    setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': `bench-${process.pid}-${(next += 1)}` } }),
  };
}

/** What an Idempotency-Key costs order-up: POST /orders with and without one, alternating. */
async function measureKeyCost(server: ChildServer): Promise<boolean> {
  const keyed = postKeyed();
  const runs: Record<'without' | 'with', Run[]> = { without: [], with: [] };
  await load(server, [keyed], WARMUP, CONNECTIONS);
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const [name, requests] of [
      ['without', [POST_ORDER]],
      ['with', [keyed]],
    ] as const) {
      const run = await load(server, [...requests], SECONDS, CONNECTIONS);
      runs[name].push(run);
      out(`    POST /orders  round ${round}  ${name} key  ${summary(run)}`);
    }
  }
  const rps = (name: 'without' | 'with') => median(runs[name].map((r) => r.rps));
  const p99 = (name: 'without' | 'with') => median(runs[name].map((r) => r.p99));
  out(
    `${(rps('with') / rps('without')).toFixed(3)}  POST /orders  order-up with/without Idempotency-Key req/s  ` +
      `(${Math.round(rps('with'))} vs ${Math.round(rps('without'))}; p99 ms ${p99('with')} vs ${p99('without')}; the key is taken and answered in the order's own statement)`,
  );
  return [...runs.with, ...runs.without].every((r) => r.failed === 0);
}

function scenarios(ids: string[]): Scenario[] {
  return [
    { label: 'GET /orders/{id}', requests: [getOrders(ids)] },
    { label: 'POST /orders', requests: [POST_ORDER] },
    {
      label: 'GET /orders?limit=100 (staff)',
      requests: [{ method: 'GET', path: '/orders?limit=100', headers: { authorization: `Bearer ${STAFF_TOKEN}` } }],
    },
  ];
}

/** A/B/C/A/B/C...: BENCH_ROUNDS measured runs per server, after one warm-up run each. Answers false on failed requests. */
async function measureScenario(scenario: Scenario, servers: Record<ServerName, ChildServer>): Promise<boolean> {
  for (const name of SERVERS) await load(servers[name], scenario.requests, WARMUP, CONNECTIONS);
  const runs: Record<ServerName, Run[]> = { plain: [], lean: [], 'order-up': [] };
  let ok = true;
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const name of SERVERS) {
      const run = await load(servers[name], scenario.requests, SECONDS, CONNECTIONS);
      runs[name].push(run);
      out(`    ${scenario.label}  round ${round}  ${name.padEnd(8)}  ${summary(run)}`);
      if (run.failed > 0) ok = false;
    }
  }
  const rps = (name: ServerName) => median(runs[name].map((r) => r.rps));
  const p99 = (name: ServerName) => median(runs[name].map((r) => r.p99));
  const cpu = (name: ServerName) => median(runs[name].map((r) => r.serverCpu));
  const each = (f: (name: ServerName) => string) => [...SERVERS].reverse().map((n) => `${n} ${f(n)}`);
  const detail =
    `(${each((n) => String(Math.round(rps(n)))).join(', ')}; p99 ms ${each((n) => String(p99(n))).join(' ')}; ` +
    `server CPU ms per request ${each((n) => ms(cpu(n))).join(' ')})`;
  out(`${(rps('order-up') / rps('plain')).toFixed(3)}  ${scenario.label}  order-up/plain req/s  ${detail}`);
  out(`${(rps('lean') / rps('plain')).toFixed(3)}  ${scenario.label}  lean/plain req/s  ${detail}`);
  return ok;
}

/**
 * order-up's resident memory (`fresh`: right after it started) over two consecutive mixes of POST
 * /orders and GET /orders/{id}. Answers false on failed requests.
 */
async function measureMemory(server: ChildServer, ids: string[], fresh: number): Promise<boolean> {
  const mix = [POST_ORDER, getOrders(ids)];
  const before = treeRss(server.pid);
  const peaks: number[] = [];
  let ok = true;
  for (let round = 1; round <= 2; round += 1) {
    const sampler = sampleRss(server.pid);
    const run = await load(server, mix, MIX_SECONDS, CONNECTIONS);
    peaks.push(sampler.stop());
    out(`    mix ${round}  order-up  peak RSS ${mb(peaks[round - 1])}  ${summary(run)}`);
    if (run.failed > 0) ok = false;
  }
  await sleep(1000);
  const after = treeRss(server.pid);
  out(
    `${(peaks[1] / peaks[0]).toFixed(3)}  order-up RSS peak mix 2 / peak mix 1  ` +
      `(after start ${mb(fresh)}, before mix 1 ${mb(before)}, peak mix 1 ${mb(peaks[0])}, peak mix 2 ${mb(peaks[1])}, 1 s after ${mb(after)}; ` +
      `POST /orders and GET /orders/{id} alternating, ${CONNECTIONS} connections, 2 x ${MIX_SECONDS} s)`,
  );
  out(`${(after / before).toFixed(3)}  order-up RSS 1 s after / before the mixes  (${mb(after)} / ${mb(before)})`);
  return ok;
}

async function main(): Promise<void> {
  printHeader();
  const started = performance.now();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'order-up-bench-'));
  let passed = false;
  cleanups.push(async () => {
    if (passed && !process.env.BENCH_KEEP_LOGS) fs.rmSync(logDir, { recursive: true, force: true });
    else process.stderr.write(`servers' logs kept in ${logDir}\n`);
  });
  const databaseUrl = await openDatabase();
  await runNode([ORDER_UP, 'migrate'], { DATABASE_URL: databaseUrl }, path.join(logDir, 'migrate.log'));
  const ids = await seed(databaseUrl);
  const servers = await startServers(databaseUrl, logDir);
  const fresh = treeRss(servers['order-up'].pid);
  await smokeCheck(servers, ids[0]);

  const results: boolean[] = [];
  for (const scenario of scenarios(ids)) results.push(await measureScenario(scenario, servers));
  results.push(await measureKeyCost(servers['order-up']));
  results.push(await measureMemory(servers['order-up'], ids, fresh));
  passed = results.every(Boolean);
  out(
    `request path: ${((performance.now() - started) / 1000).toFixed(0)} s, load average now ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}` + (passed ? '' : '; some requests FAILED (see above)'),
  );
  if (!passed) process.exitCode = 1;
}

try {
  await main();
} finally {
  await cleanUp();
}

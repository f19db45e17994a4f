// `make bench`: how close the charge pipeline gets to the charge service's own limit.
// N pending orders are charged at once over HTTP; the fake charge service takes LATENCY ms per call
// and one call at a time, so the best possible wall time is N x LATENCY. efficiency = that / actual.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { createDatabase, startEmbeddedDatabase } from '../../src/db/embedded.js';
import { createLogger } from '../../src/log.js';
import { createOrder } from '../../src/domain/orders.js';
import { openRuntime } from '../../src/runtime.js';

const N = Number(process.env.BENCH_ORDERS ?? 300);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 5);
const here = path.dirname(fileURLToPath(import.meta.url));

async function startFake(): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [path.join(here, 'fake-charge-process.js')], {
    env: { ...process.env, LATENCY_MS: String(LATENCY) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

async function startOrderUp(env: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }> {
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.resolve(here, '../../../bin/order-up.js'), 'serve', '--port', '0', '--no-migrate'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
  });
  return { url, stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); }) };
}

async function main(): Promise<void> {
  let stopDb = async () => {};
  let databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl) {
    databaseUrl = await createDatabase(databaseUrl, 'order_up_bench');
  } else {
    const db = await startEmbeddedDatabase({ dataDir: path.resolve('.test-db/bench') });
    stopDb = db.stop;
    databaseUrl = await createDatabase(db.url.replace(/\/[^/]*$/, '/postgres'), 'order_up_bench');
  }
  const fake = await startFake();
  const config = loadConfig({ DATABASE_URL: databaseUrl, ORDER_UP_STAFF_TOKENS: 'bench' });
  const rt = await openRuntime(config, createLogger({ level: 'warn' }), { migrate: true });
  // order-up runs as it would in production: `order-up serve` in a process of its own.
  const server = await startOrderUp({ DATABASE_URL: databaseUrl, CHARGE_SERVICE_URL: fake.url, FULFILLMENT_SERVICE_URL: fake.url, ORDER_UP_STAFF_TOKENS: 'bench' });
  try {
    const ids: string[] = [];
    for (let i = 0; i < N + 20; i += 1) {
      const order = await createOrder(rt.context(), {
        customerEmail: `bench${i}@example.com`,
        lineItems: [{ description: 'Benchmark item', priceCents: 1000 + i, quantity: 1 }],
      });
      ids.push(order.id);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: N });
    const post = (id: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(`${server.url}/orders/${id}/charge`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ cardToken: 'tok_bench' }));
      });
    // Warm up the code paths (JIT, connection pools) on a few orders that are not measured.
    const warm = ids.splice(0, 20);
    await Promise.all(warm.map(post));

    const measured = ids;
    await fetch(`${fake.url}/reset`, { method: 'POST' });
    const started = performance.now();
    const statuses = await Promise.all(measured.map(post));
    const wallMs = performance.now() - started;
    const stats = (await (await fetch(`${fake.url}/stats`)).json()) as { calls: number; maxInFlight: number; gapMs: number };
    const ideal = measured.length * LATENCY;
    const failed = statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      [
        `charge pipeline: ${measured.length} concurrent charges over HTTP, charge service ${LATENCY} ms per call, one at a time`,
        `  wall time        ${wallMs.toFixed(1)} ms (ideal ${ideal} ms)`,
        `  efficiency       ${(ideal / wallMs).toFixed(3)}   (target >= 0.95)`,
        `  max in flight    ${stats.maxInFlight}   (must be 1)`,
        `  mean gap         ${(stats.gapMs / (measured.length - 1)).toFixed(2)} ms between one charge's answer and the next request`,
        `  failed requests  ${failed}`,
        '',
      ].join('\n'),
    );
    if (stats.maxInFlight !== 1 || failed > 0) process.exitCode = 1;
  } finally {
    await server.stop();
    await rt.close();
    fake.stop();
    await stopDb();
  }
}

await main();

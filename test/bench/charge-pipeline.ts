// `make bench`: how close the charge pipeline gets to the charge service's own limit.
// N pending orders are charged at once over HTTP; the fake charge service takes LATENCY ms per call
// and one call at a time, so the best possible wall time is N x LATENCY. efficiency = that / actual.
//
// BENCH_ROUNDS (default 3) repeats the measured burst on fresh orders against the same server, so
// one run shows how much the figure varies (this box is small and shared). BENCH_SERVER_NODE_ARGS
// goes to order-up's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`); with BENCH_WINDOW_FILE the
// measured windows (CLOCK_MONOTONIC microseconds, the clock of a .cpuprofile) are written there so
// a profile can be cut to them (test/bench/analyze-profile.mjs).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import axios from 'axios';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { createDatabase, startEmbeddedDatabase } from '../../src/db/embedded/index.js';
import { createLogger } from '../../src/log.js';
import { createOrder } from '../../src/domain/orders.js';
import { openRuntime } from '../../src/runtime.js';

const N = Number(process.env.BENCH_ORDERS ?? 300);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARM = 20;
const here = path.dirname(fileURLToPath(import.meta.url));

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux). */
function cpuMsOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

/** The whole machine's CPU time so far (all cores, in clock ticks): [busy, all]. Steal counts as not ours. */
function machineTicks(): [number, number] {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return [busy, busy + idle + iowait + steal];
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

async function startFake(): Promise<{ url: string; pid: number; stop(): void }> {
  const child = spawn(process.execPath, [path.join(here, 'fake-charge-process.js')], {
    env: { ...process.env, LATENCY_MS: String(LATENCY) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}

async function startOrderUp(env: Record<string, string>): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, path.resolve(here, '../../../bin/order-up.js'), 'serve', '--port', '0', '--no-migrate'],
    {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

interface FakeStats {
  calls: number;
  maxInFlight: number;
  /** Idle time at the fake between one answer and the next request, summed. */
  gapMs: number;
  /** Time from each request's arrival to its answer, summed: the fake's real service time. */
  serviceMs: number;
  firstArrivalUs: number;
  lastEndUs: number;
}

/** CPU (ms) used so far by every PostgreSQL process (the embedded server and its backends). */
function postgresCpuMs(): number {
  let sum = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') sum += cpuMsOf(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Efficiency of N back-to-back charges from one bare loop: what the box and the client allow. */
async function bareLoopEfficiency(fakeUrl: string): Promise<{ axios: number; raw: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const client = axios.create({ baseURL: fakeUrl, httpAgent: agent, timeout: 10_000, validateStatus: () => true });
  const body = JSON.stringify({ cardToken: 'tok_bench', amountCents: 1 });
  const raw = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(`${fakeUrl}/charge`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(body);
    });
  const time = async (send: () => Promise<unknown>) => {
    const started = performance.now();
    for (let i = 0; i < N; i += 1) await send();
    return (N * LATENCY) / (performance.now() - started);
  };
  const result = {
    axios: await time(() => client.post('/charge', body, { headers: { 'content-type': 'application/json' } })),
    raw: await time(raw),
  };
  agent.destroy();
  return result;
}

async function main(): Promise<void> {
  let stopDb = async () => {};
  let databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl) {
    databaseUrl = await createDatabase(databaseUrl, 'order_up_bench');
  } else {
    const db = await startEmbeddedDatabase({ dataDir: path.resolve('.test-db/bench') });
    stopDb = () => db.stop();
    databaseUrl = await createDatabase(db.url.replace(/\/[^/]*$/, '/postgres'), 'order_up_bench');
  }
  const fake = await startFake();
  const config = loadConfig({ DATABASE_URL: databaseUrl, ORDER_UP_STAFF_TOKENS: 'bench' });
  const rt = await openRuntime(config, createLogger({ level: 'warn' }), { migrate: true });
  // order-up runs as it would in production: `order-up serve` in a process of its own. All N
  // charges arrive at once, in one process: its bound on requests in progress must let them in.
  const server = await startOrderUp({
    DATABASE_URL: databaseUrl,
    CHARGE_SERVICE_URL: fake.url,
    FULFILLMENT_SERVICE_URL: fake.url,
    ORDER_UP_STAFF_TOKENS: 'bench',
    ORDER_UP_MAX_IN_FLIGHT: String(Math.max(256, N + 10)),
  });
  let exitCode = 0;
  try {
    const ids: string[] = [];
    for (let i = 0; i < WARM + N * ROUNDS; i += 1) {
      const order = await createOrder(rt.context(), {
        customerEmail: `bench${i}@example.com`,
        lineItems: [{ description: 'Benchmark item', priceCents: 1000 + i, quantity: 1 }],
      });
      ids.push(order.id);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: N });
    const post = (id: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${server.url}/orders/${id}/charge`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ cardToken: 'tok_bench' }));
      });
    // Warm up the code paths (JIT, connection pools) on a few orders that are not measured.
    await Promise.all(ids.splice(0, WARM).map(post));

    process.stdout.write(
      `charge pipeline: ${N} concurrent charges over HTTP, charge service ${LATENCY} ms per call, one at a time; ${ROUNDS} round(s); load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`,
    );
    const windows: [number, number][] = [];
    const efficiencies: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const measured = ids.splice(0, N);
      await fetch(`${fake.url}/reset`, { method: 'POST' });
      const cpuBefore = [cpuMsOf(server.pid), cpuMsOf(fake.pid), cpuMsOf(process.pid), postgresCpuMs()];
      const ticksBefore = machineTicks();
      const startUs = monotonicUs();
      const started = performance.now();
      const statuses = await Promise.all(measured.map(post));
      const wallMs = performance.now() - started;

      const endUs = monotonicUs();
      const ticksAfter = machineTicks();
      // How busy the whole machine was: far from 100% means the time is lost to latency (wake-ups,
      // hand-offs between processes), not to a lack of CPU.
      const machineBusy = (ticksAfter[0] - ticksBefore[0]) / Math.max(1, ticksAfter[1] - ticksBefore[1]);
      const [serverCpu, fakeCpu, clientCpu, pgCpu] = [cpuMsOf(server.pid), cpuMsOf(fake.pid), cpuMsOf(process.pid), postgresCpuMs()].map(
        (v, i) => (v - cpuBefore[i]) / measured.length,
      );
      const stats = (await (await fetch(`${fake.url}/stats`)).json()) as FakeStats;
      windows.push([startUs, endUs]);
      const ideal = measured.length * LATENCY;
      const failed = statuses.filter((s) => s !== 200).length;
      const efficiency = ideal / wallMs;
      efficiencies.push(efficiency);
      process.stdout.write(
        [
          `round ${round + 1}`,
          `  wall time        ${wallMs.toFixed(1)} ms (ideal ${ideal} ms)`,
          `  efficiency       ${efficiency.toFixed(3)}   (target >= 0.95)`,
          `  max in flight    ${stats.maxInFlight}   (must be 1)`,
          `  mean gap         ${(stats.gapMs / (stats.calls - 1)).toFixed(2)} ms between one charge's answer and the next request`,
          // The fake cannot answer in exactly LATENCY ms (timers are late); wall time against what it
          // really took says how much of the shortfall is order-up's and how much the fake's.
          `  fake service     ${(stats.serviceMs / stats.calls).toFixed(2)} ms per call (busy ${((stats.serviceMs / wallMs) * 100).toFixed(1)}% of the wall time)`,
          // Before the first call reaches the fake, and after the last answer until the last response.
          `  head / tail      ${((stats.firstArrivalUs - startUs) / 1000).toFixed(1)} ms / ${((endUs - stats.lastEndUs) / 1000).toFixed(1)} ms`,
          `  CPU per charge   order-up ${serverCpu.toFixed(2)} ms, PostgreSQL ${pgCpu.toFixed(2)} ms, fake ${fakeCpu.toFixed(2)} ms, bench client ${clientCpu.toFixed(2)} ms`,
          `  machine busy     ${(machineBusy * 100).toFixed(0)}% of ${os.availableParallelism()} cores`,
          `  failed requests  ${failed}`,
          '',
        ].join('\n'),
      );
      if (stats.maxInFlight !== 1 || failed > 0 || stats.calls !== measured.length) exitCode = 1;
    }
    if (ROUNDS > 1) process.stdout.write(`median efficiency ${median(efficiencies).toFixed(3)} (target >= 0.95)\n`);
    // The machine's own ceiling: one bare loop sending N charges back to back to the same fake
    // (no order-up, no database, no concurrency), once with the axios client order-up uses and once
    // with node's plain http. order-up cannot beat the first figure on the same box.
    const floors = await bareLoopEfficiency(fake.url);
    process.stdout.write(
      `reference: a bare sequential loop against the same fake reaches ${floors.axios.toFixed(3)} with axios, ${floors.raw.toFixed(3)} with plain http\n` +
        `order-up reaches ${(median(efficiencies) / floors.axios).toFixed(2)} of what its HTTP client allows on this machine\n`,
    );
    if (process.env.BENCH_WINDOW_FILE) fs.writeFileSync(process.env.BENCH_WINDOW_FILE, JSON.stringify({ windows }));
  } finally {
    await server.stop();
    await rt.close();
    fake.stop();
    await stopDb();
  }
  process.exitCode = exitCode;
}

await main();

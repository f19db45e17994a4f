// `order-up serve --workers N`: the BUILT CLI (`make build` first) as a real process tree - a
// primary and its node:cluster workers - against a real PostgreSQL database and a fake charge
// service. Which worker did what is read from the operating system (/proc), the workers' own log
// lines and the database; the API exposes no process identity.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { call, newOrder, STAFF_TOKEN } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { freshDatabaseUrl } from './support/test-db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'order-up.js');
const WORKER_SCRIPT = path.join(ROOT, 'dist', 'cli', 'cluster-worker.js');
const TEST_TIMEOUT_MS = 40_000;

let fake: FakeChargeService;
let fakePort: number;
const clusters: Cluster[] = [];

beforeAll(async () => {
  if (!existsSync(WORKER_SCRIPT)) throw new Error('the CLI is not built: run `make build` (make test does) before this test');
  fake = await FakeChargeService.start();
  fakePort = Number(new URL(fake.url).port);
});

afterEach(async () => {
  // A failed test must not leave a process tree behind (nor a request the fake holds).
  fake.releaseHung();
  await Promise.all(clusters.splice(0).map((c) => c.stop()));
  fake.default = { status: 201 };
});

afterAll(async () => {
  await fake?.stop();
});

// ---------------------------------------------------------------- helpers

interface Cluster {
  url: string;
  primary: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the primary ends. */
  exited: Promise<number | string>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, wait for the primary's exit (SIGKILL for the whole tree if it hangs); resolves with its exit. */
  stop(): Promise<number | string>;
}

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

function serveProcess(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; exited: Promise<number | string>; out: () => string; err: () => string } {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ORDER_UP_STAFF_TOKENS: STAFF_TOKEN,
      // Far beyond the test's own timeout: a request the fake holds stays in flight until the test lets go.
      UPSTREAM_TIMEOUT_MS: '120000',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, exited, out: () => out, err: () => err };
}

/** `order-up serve --port 0 --workers N` on `databaseUrl` with the fake as both upstreams, once it has printed its banner. */
async function startCluster(workers: number, databaseUrl: string): Promise<Cluster> {
  const p = serveProcess(['--port', '0', '--workers', String(workers)], {
    DATABASE_URL: databaseUrl,
    CHARGE_SERVICE_URL: fake.url,
    FULFILLMENT_SERVICE_URL: fake.url,
  });
  let stopping: Promise<number | string> | undefined;
  const cluster: Cluster = {
    url: '',
    primary: p.child,
    exited: p.exited,
    stdout: p.out,
    stderr: p.err,
    stop: () =>
      (stopping ??= (async () => {
        if (p.child.exitCode === null && p.child.signalCode === null) {
          const tree = [p.child.pid!, ...workerPids(p.child.pid!)];
          p.child.kill('SIGTERM');
          const timer = setTimeout(() => tree.forEach((pid) => kill(pid, 'SIGKILL')), 15_000);
          await p.exited;
          clearTimeout(timer);
        }
        return p.exited;
      })()),
  };
  clusters.push(cluster);
  await until(() => / workers\n/.test(p.out()) || p.child.exitCode !== null, 'the banner');
  const m = /order-up listening on (http:\/\/\S+)/.exec(p.out());
  if (!m || !p.out().includes(`${workers} workers\n`)) throw new Error(`serve --workers ${workers} did not start: ${p.out()}\n${p.err()}`);
  cluster.url = m[1];
  return cluster;
}

/** Runs `order-up serve ...` to its end (for failures to start). */
async function serveUntilExit(args: string[], env: Record<string, string>): Promise<Run> {
  const p = serveProcess(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 25_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.out(), stderr: p.err() };
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 20 ms (no sleeping in place of an event); fails clearly after a while. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 25_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function procRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return ''; // the process is gone
  }
}

/** Live worker processes of this build whose parent is `primaryPid` (what `ps --ppid` shows, minus zombies). */
function workerPids(primaryPid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procRead(`/proc/${entry}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== primaryPid) continue;
    if (procRead(`/proc/${entry}/cmdline`).split('\0').includes(WORKER_SCRIPT)) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

/** Every live process of this build's worker script, whoever its parent (to see that none lingers). */
function anyWorkerPids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && procRead(`/proc/${e}/cmdline`).split('\0').includes(WORKER_SCRIPT))
    .map(Number);
}

/** Which of `pids` has an established TCP connection to `port` on this machine. */
function pidsConnectedTo(pids: number[], port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of procRead(table).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl, local_address, rem_address, st, ..., inode (index 9); st 01 = ESTABLISHED
      if (cols.length > 9 && cols[3] === '01' && parseInt(cols[2].split(':')[1], 16) === port) inodes.add(cols[9]);
    }
  }
  return pids.filter((pid) => {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      return false;
    }
    return fds.some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false;
      }
    });
  });
}

/** The process ids in the JSON log lines that mention `text`. */
function logPids(stderr: string, text: string): Set<number> {
  const pids = new Set<number>();
  for (const line of stderr.split('\n')) {
    if (!line.includes(text)) continue;
    try {
      const pid = (JSON.parse(line) as { pid?: unknown }).pid;
      if (typeof pid === 'number') pids.add(pid);
    } catch {
      // not a log line
    }
  }
  return pids;
}

async function query<T>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

async function createOrders(url: string, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await call(url, 'POST', '/orders', { body: newOrder() });
      expect(res.status).toBe(201);
      return res.body.order.id as string;
    }),
  );
}

// ---------------------------------------------------------------- tests

describe('serve --workers', () => {
  test(
    'when serve --workers 3 gets 30 concurrent charges of 30 pending orders, then all are charged, one /charge at a time, by several workers',
    async () => {
      const databaseUrl = await freshDatabaseUrl('workers_charge');
      const cluster = await startCluster(3, databaseUrl);
      const workers = workerPids(cluster.primary.pid!);
      expect(workers).toHaveLength(3);

      const ids = await createOrders(cluster.url, 30);
      fake.default = { status: 201, delayMs: 10 };
      fake.maxInFlight = 0;
      const before = fake.calls.length;
      const answers = await Promise.all(
        ids.map((id, i) => call(cluster.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: `tok_w${i}` } })),
      );

      expect(answers.map((a) => a.status)).toEqual(ids.map(() => 200));
      expect(answers.map((a) => a.body.order.status)).toEqual(ids.map(() => 'charged'));
      // The fake: exactly one call per order, never two at once across the three processes.
      const received = fake.calls.slice(before);
      expect(received).toHaveLength(30);
      expect(received.map((c) => c.cardToken).sort()).toEqual(ids.map((_, i) => `tok_w${i}`).sort());
      expect(received.every((c) => c.amountCents === 3300)).toBe(true);
      expect(fake.maxInFlight).toBe(1);
      // Stored: every order charged and released, one succeeded payment each, made by more than one process (lease owner).
      const orders = await query<{ status: string; operation: string | null }>(
        databaseUrl,
        'select status, operation from orders where id = any($1)',
        [ids],
      );
      expect(orders).toHaveLength(30);
      expect(orders.every((o) => o.status === 'charged' && o.operation === null)).toBe(true);
      const payments = await query<{ state: string; owner: number }>(
        databaseUrl,
        'select state, owner from payments where order_id = any($1)',
        [ids],
      );
      expect(payments.map((p) => p.state)).toEqual(ids.map(() => 'succeeded'));
      expect(new Set(payments.map((p) => p.owner)).size).toBeGreaterThan(1);
      // Served by several of the primary's workers: the process ids of the charge requests' log lines.
      const servedBy = new Set(ids.flatMap((id) => [...logPids(cluster.stderr(), `/orders/${id}/charge`)]));
      expect(servedBy.size).toBeGreaterThan(1);
      expect([...servedBy].every((pid) => workers.includes(pid))).toBe(true);

      expect(await cluster.stop()).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'when the primary gets SIGTERM while the fake holds a charge and others wait their turn, then every charge completes, every worker exits and the primary exits 0',
    async () => {
      const databaseUrl = await freshDatabaseUrl('workers_drain');
      const cluster = await startCluster(2, databaseUrl);
      const workers = workerPids(cluster.primary.pid!);
      expect(workers).toHaveLength(2);
      const ids = await createOrders(cluster.url, 6);

      fake.maxInFlight = 0;
      const before = fake.calls.length;
      fake.next({ hang: true });
      const answers = ids.map((id, i) => call(cluster.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: `tok_d${i}` } }));
      await fake.received(before + 1);
      // Every charge is journaled (so waiting in its worker's queue) before the signal.
      await until(
        async () => (await query(databaseUrl, 'select 1 from payments where order_id = any($1)', [ids])).length === 6,
        'six journaled charges',
      );

      cluster.primary.kill('SIGTERM');
      await until(() => (cluster.stderr().match(/worker shutting down/g) ?? []).length === 2, 'both workers draining');
      // Draining: no new connections are taken, while the held and queued charges are still under way.
      await until(
        () =>
          call(cluster.url, 'GET', '/healthz').then(
            () => false,
            () => true,
          ),
        'the port to close',
      );
      expect(fake.calls.length - before).toBe(1);
      fake.releaseHung();

      expect((await Promise.all(answers)).map((a) => a.status)).toEqual(ids.map(() => 200));
      expect(await cluster.exited).toBe(0);
      expect(workers.filter(alive)).toEqual([]);
      expect(fake.calls.length - before).toBe(6);
      expect(fake.maxInFlight).toBe(1);
      const orders = await query<{ status: string; operation: string | null }>(
        databaseUrl,
        'select status, operation from orders where id = any($1)',
        [ids],
      );
      expect(orders.map((o) => `${o.status}/${o.operation}`)).toEqual(ids.map(() => 'charged/null'));
      const payments = await query<{ state: string }>(databaseUrl, 'select state from payments where order_id = any($1)', [ids]);
      expect(payments.map((p) => p.state)).toEqual(ids.map(() => 'succeeded'));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'when a worker is SIGKILLed while the fake holds its charge, then a new worker replaces it, the payment is in doubt and the order answers 409 payment_in_doubt without a second /charge',
    async () => {
      const databaseUrl = await freshDatabaseUrl('workers_crash');
      const cluster = await startCluster(2, databaseUrl);
      const primaryPid = cluster.primary.pid!;
      const workers = workerPids(primaryPid);
      expect(workers).toHaveLength(2);
      const [id] = await createOrders(cluster.url, 1);

      const before = fake.calls.length;
      fake.next({ hang: true });
      const answer = call(cluster.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_killed' } }).catch(
        () => 'connection lost' as const,
      );
      await fake.received(before + 1);
      const victims = pidsConnectedTo(workers, fakePort);
      expect(victims).toHaveLength(1); // the worker whose charge the fake holds
      kill(victims[0], 'SIGKILL');

      expect(await answer).toBe('connection lost');
      await until(() => {
        const now = workerPids(primaryPid);
        return now.length === 2 && !now.includes(victims[0]);
      }, 'a new worker');
      // The new worker's start-up found the dead one's lease free and recovered its work.
      await until(
        async () =>
          (await query<{ state: string }>(databaseUrl, 'select state from payments where order_id = $1', [id]))[0]?.state === 'in_doubt',
        'the payment to be recovered as in doubt',
      );
      fake.releaseHung(); // the charge service may well have taken the money

      const again = await call(cluster.url, 'POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_killed' } });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('payment_in_doubt');
      expect(fake.calls.length).toBe(before + 1);
      expect(await query(databaseUrl, 'select status, operation from orders where id = $1', [id])).toEqual([
        { status: 'pending', operation: null },
      ]);
      expect(await query(databaseUrl, 'select kind, amount_cents, state from payments where order_id = $1', [id])).toEqual([
        { kind: 'charge', amount_cents: '3300', state: 'in_doubt' },
      ]);
      // The primary said what happened (a warning with the signal), and is still the same process.
      const warning = cluster
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; pid: number; signal?: string; msg: string })
        .find((l) => l.level === 40 && l.pid === primaryPid && l.signal === 'SIGKILL');
      expect(warning?.msg).toMatch(/ended \(signal SIGKILL\); starting a new one/);

      expect(await cluster.stop()).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'when serve --workers 2 cannot start (its port is taken, or the database is unreachable), then it exits 1 with the reason and leaves no worker behind',
    async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      try {
        const port = String((taken.address() as net.AddressInfo).port);
        const databaseUrl = await freshDatabaseUrl('workers_port');
        const env = { DATABASE_URL: databaseUrl, CHARGE_SERVICE_URL: fake.url, FULFILLMENT_SERVICE_URL: fake.url };
        const [portTaken, noDatabase] = await Promise.all([
          serveUntilExit(['--port', port, '--workers', '2'], env),
          // --no-migrate: the workers are the first to connect.
          serveUntilExit(['--port', '0', '--workers', '2', '--no-migrate'], {
            ...env,
            DATABASE_URL: 'postgres://order_up:pw@127.0.0.1:1/order_up',
          }),
        ]);
        expect(portTaken.code).toBe(1);
        expect(portTaken.stderr).toMatch(/^order-up: .*EADDRINUSE/m);
        expect(portTaken.stdout).toBe('');
        expect(noDatabase.code).toBe(1);
        expect(noDatabase.stderr).toMatch(/^order-up: .*ECONNREFUSED/m);
        expect(noDatabase.stdout).toBe('');
        expect(anyWorkerPids()).toEqual([]);
      } finally {
        taken.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test('when --workers or WORKERS is out of range, then serve is a usage error (exit 2) and starts nothing', async () => {
    const env = {
      DATABASE_URL: 'postgres://order_up:pw@127.0.0.1:1/order_up',
      CHARGE_SERVICE_URL: fake.url,
      FULFILLMENT_SERVICE_URL: fake.url,
    };
    const runs = await Promise.all([
      serveUntilExit(['--workers', '65'], env),
      serveUntilExit(['--workers', 'two'], env),
      serveUntilExit(['--workers', '-1'], env),
      serveUntilExit([], { ...env, WORKERS: '65' }),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2]);
    expect(runs.map((r) => r.stdout)).toEqual(['', '', '', '']);
    expect(runs[0].stderr).toContain('--workers must be 0..64 (0: one per core), got "65"');
    expect(runs[1].stderr).toContain('--workers must be 0..64');
    expect(runs[3].stderr).toContain('WORKERS must be an integer from 0 to 64, got "65"');
  });
});

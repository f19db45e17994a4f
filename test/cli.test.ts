// The staff CLI as staff run it: the BUILT program (`make build`; `make test` builds first) in a
// child process, against a real PostgreSQL database and fake upstream services, next to a running
// API server on the same database (used to seed orders and to make charges meanwhile).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { freshDatabaseUrl } from './support/test-db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'order-up.js');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
let app: TestApp;
let databaseUrl: string;

/** Every card token used here, and everything the CLI ever printed: no output may contain a token. */
const tokens: string[] = [];
const printed: string[] = [];

function token(): string {
  const t = `tok_cli_${randomBytes(6).toString('hex')}`;
  tokens.push(t);
  return t;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/order-up.js ...args` with the test's configuration, as staff would. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: databaseUrl,
        CHARGE_SERVICE_URL: charge.url,
        FULFILLMENT_SERVICE_URL: fulfillment.url,
        UPSTREAM_TIMEOUT_MS: '2000',
        LOG_LEVEL: 'silent',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

async function pendingOrder(overrides: Record<string, unknown> = {}): Promise<{ id: string; totalCents: number }> {
  const res = await app.call('POST', '/orders', { body: newOrder(overrides) });
  expect(res.status).toBe(201);
  return res.body.order;
}

async function chargedOrder(cardToken = token(), overrides: Record<string, unknown> = {}): Promise<{ id: string; totalCents: number }> {
  const order = await pendingOrder(overrides);
  const res = await app.call('POST', `/orders/${order.id}/charge`, { body: { cardToken } });
  expect(res.status).toBe(200);
  return order;
}

async function statusOf(id: string): Promise<string> {
  const res = await app.call('GET', `/orders/${id}`);
  expect(res.status).toBe(200);
  return res.body.order.status;
}

async function paymentsOf(orderId: string) {
  return app.db.execute<{ id: string; kind: string; amount_cents: string; state: string; outcome: string | null }[]>(
    'select id, kind, amount_cents, state, outcome from payments where order_id = ? order by created_at',
    [orderId],
  );
}

beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('the CLI is not built: run `make build` (make test does) before this test');
  }
  charge = await FakeChargeService.start();
  fulfillment = await FakeFulfillmentService.start();
  databaseUrl = await freshDatabaseUrl('cli');
  app = await startTestApp({ databaseUrl, chargeUrl: charge.url, fulfillmentUrl: fulfillment.url });
});

afterEach(() => {
  charge.default = { status: 201 };
  fulfillment.heal();
});

afterAll(async () => {
  await app?.stop();
  await charge?.stop();
  await fulfillment?.stop();
});

describe('usage', () => {
  test('every command has --help with an example, exit 0', async () => {
    const commands = [
      [],
      ['serve'],
      ['migrate'],
      ['simulate-upstreams'],
      ['orders'],
      ['orders', 'list'],
      ['orders', 'show'],
      ['fulfill'],
      ['cancel'],
      ['payments'],
      ['payments', 'in-doubt'],
      ['payments', 'resolve'],
    ];
    const runs = await Promise.all(commands.map((c) => cli([...c, '--help'])));
    runs.forEach((run, i) => {
      expect({ command: commands[i], code: run.code }).toEqual({ command: commands[i], code: 0 });
      expect(run.stdout).toMatch(/Usage: order-up/);
      expect(run.stdout).toMatch(/Examples?:\n(.*\n)*? {2}\$ .*order-up /);
    });
  });

  test('usage errors exit 2 with a short message on stderr and nothing on stdout', async () => {
    const uuid = '0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10';
    const cases = [
      ['bogus'],
      [],
      ['orders'],
      ['orders', 'show'],
      ['orders', 'list', '--status', 'shipped'],
      ['orders', 'list', '--limit', '0'],
      ['orders', 'list', '--limit', 'ten'],
      ['orders', 'list', '--bogus'],
      ['cancel'],
      ['fulfill'],
      ['fulfill', 'abc', '--all-charged'],
      ['payments', 'resolve', uuid],
      ['payments', 'resolve', uuid, '--succeeded', '--failed'],
      ['payments', 'resolve', '--succeeded'],
      ['cancel', 'abc', '--reason', 'x'.repeat(501)],
      ['serve', '--simulate-latency', '5'],
    ];
    const runs = await Promise.all(cases.map((c) => cli(c)));
    runs.forEach((run, i) => {
      expect({ args: cases[i], code: run.code }).toEqual({ args: cases[i], code: 2 });
      expect(run.stderr.trim()).not.toBe('');
      expect(run.stdout).toBe('');
    });
    expect(runs[0].stderr).toContain("unknown command 'bogus'");
    expect(runs[12].stderr).toMatch(/--succeeded.*cannot be used with.*--failed/);
    expect(runs[10].stderr).toContain('not both');
    expect(runs[15].stderr).toContain('--simulate-latency goes with --simulate-upstreams');
  });
});

describe('IDs that start with "-"', () => {
  test('when an option comes after "--" with IDs, then it is a usage error (exit 2, nothing done) whose hint puts the options before "--"', async () => {
    const id = `-dash-${randomBytes(3).toString('hex')}`;
    await pendingOrder({ id });
    for (const args of [
      ['cancel', '--', id, '--reason', 'test'],
      ['cancel', '--', id, '--reason=test'],
      ['fulfill', '--', id, '--json'],
      ['orders', 'show', '--', id, '--json'],
    ]) {
      const run = await cli(args);
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(run.stderr).toContain(`"${args.at(-1) === 'test' ? '--reason' : args.at(-1)}" comes after "--"`);
      expect(run.stderr).toContain('Options go before "--"');
    }
    const refused = await cli(['cancel', '--', id, '--reason', 'test']);
    expect(refused.stderr).toContain(`order-up cancel --reason test -- ${id}`);
    expect(await statusOf(id)).toBe('pending');

    // As the hint says: options before "--", the ID after it.
    const run = await cli(['cancel', '--reason', 'test', '--', id]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`cancelled  ${id}`);
    const shown = await cli(['orders', 'show', '--json', '--', id]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).order).toMatchObject({ id, status: 'cancelled', cancelReason: 'test' });
  });

  test('when an ID that starts with "-" is given without "--", then the usage error suggests the command line with "--"', async () => {
    const show = await cli(['orders', 'show', '-dash-1']);
    expect(show.code).toBe(2);
    expect(show.stdout).toBe('');
    expect(show.stderr).toContain("unknown option '-dash-1'");
    expect(show.stderr).toContain('order-up orders show -- -dash-1');
    const cancel = await cli(['cancel', '-dash-1', '--reason', 'out of stock']);
    expect(cancel.code).toBe(2);
    expect(cancel.stderr).toContain("order-up cancel --reason 'out of stock' -- -dash-1");
    // A mistyped option is not taken for an ID.
    expect((await cli(['cancel', 'abc', '--resaon', 'x'])).stderr).not.toContain('"--"');
  });
});

describe('serve', () => {
  test('when serve simulates its upstreams with --simulate-latency, then each simulated charge takes that long, and the banner names the misbehaving tokens', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'order-up-latency-'));
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--simulate-upstreams', '--simulate-latency', '700'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: databaseUrl,
        ORDER_UP_DATA_DIR: dataDir,
        ORDER_UP_STAFF_TOKENS: 'staff',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let banner = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          banner += d.toString();
          const m = /listening on (http:\/\/\S+)[\s\S]*simulated charge and fulfillment services: .*\n/.exec(banner);
          if (m) resolve(m[1]);
        });
        void exited.then((code) => reject(new Error(`serve exited (${code}) before listening`)));
      });
      expect(banner).toMatch(/tok_decline\*, tok_fail\*, tok_hang\*, tok_reset\*/);
      const created = (await (
        await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(newOrder()) })
      ).json()) as { order: { id: string } };
      const started = performance.now();
      const charged = await fetch(`${url}/orders/${created.order.id}/charge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cardToken: 'tok_slow_ok' }),
      });
      expect(charged.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(690);
    } finally {
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test("when serve cannot start (its port is taken), then it exits 1 at once saying which port and how to pick another, and leaves a running server's simulator published", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'order-up-serve-'));
    const published = path.join(dataDir, 'simulated-upstreams.json');
    // As `make run` leaves it: the simulator of a live serve (this test's own process stands in for it).
    const running = JSON.stringify({ url: 'http://127.0.0.1:18999', pid: process.pid }) + '\n';
    await writeFile(published, running);
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const run = await cli(['serve', '--port', String(port), '--simulate-upstreams'], {
        ORDER_UP_DATA_DIR: dataDir,
        ORDER_UP_STAFF_TOKENS: 'staff',
      });
      expect(run.code).toBe(1); // not killed by the helper's 20 s timer: it did not hang
      // Which port, and how to pick another.
      expect(run.stderr).toContain(`port ${port} on 127.0.0.1 is already in use (EADDRINUSE)`);
      expect(run.stderr).toContain(`PORT=${port + 2 > 65535 ? port - 2 : port + 2} make run`);
      expect(run.stdout).not.toContain('listening');
      expect(await readFile(published, 'utf8')).toBe(running);
    } finally {
      taken.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('orders list and show', () => {
  test('show prints the order with money and its line items; --json is the order; unknown IDs exit 1', async () => {
    const order = await chargedOrder();
    const human = await cli(['orders', 'show', order.id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`Order\\s+${order.id}`));
    expect(human.stdout).toMatch(/Status\s+charged/);
    expect(human.stdout).toMatch(/Total\s+\$33\.00/);
    expect(human.stdout).toMatch(/Tea\s+\$12\.50\s+2\s+\$25\.00/);
    expect(human.stdout).toMatch(/Mug\s+\$8\.00\s+1\s+\$8\.00/);

    const json = await cli(['orders', 'show', order.id, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).order).toMatchObject({
      id: order.id,
      status: 'charged',
      totalCents: 3300,
      lineItems: [{ description: 'Tea' }, { description: 'Mug' }],
    });

    const missing = await cli(['orders', 'show', 'no-such-order']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('order_not_found');
    const missingJson = await cli(['orders', 'show', 'no-such-order', '--json']);
    expect(missingJson.code).toBe(1);
    expect(JSON.parse(missingJson.stdout)).toMatchObject({ error: { code: 'order_not_found' } });
  });

  test('list prints an aligned table filtered by status; --json pages like the API', async () => {
    const a = await pendingOrder({ lineItems: [{ description: 'Big', priceCents: 123456, quantity: 1 }] });
    const b = await pendingOrder();
    const human = await cli(['orders', 'list', '--status', 'pending']);
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    const header = lines[0];
    expect(header).toMatch(/^ID\s+STATUS\s+TOTAL\s+ITEMS\s+CUSTOMER\s+CREATED$/);
    const rowA = lines.find((l) => l.startsWith(a.id))!;
    const rowB = lines.find((l) => l.startsWith(b.id))!;
    expect(rowA).toContain('$1,234.56');
    expect(rowB).toContain('$33.00');
    // Aligned: the status column starts at the same place on every row, totals end together.
    expect(rowA.indexOf('pending')).toBe(header.indexOf('STATUS'));
    expect(rowB.indexOf('pending')).toBe(header.indexOf('STATUS'));
    expect(rowA.indexOf('$1,234.56') + '$1,234.56'.length).toBe(header.indexOf('TOTAL') + 'TOTAL'.length);
    expect(rowB.indexOf('$33.00') + '$33.00'.length).toBe(header.indexOf('TOTAL') + 'TOTAL'.length);
    expect(lines.filter((l) => /\s(charged|fulfilled|cancelled)\s/.test(l))).toEqual([]);

    const json = await cli(['orders', 'list', '--status', 'pending', '--limit', '1', '--json']);
    expect(json.code).toBe(0);
    const page = JSON.parse(json.stdout);
    expect(page.orders).toHaveLength(1);
    expect(page.orders[0].id).toBe(b.id); // newest first
    expect(typeof page.nextCursor).toBe('string');
    const next = JSON.parse(
      (await cli(['orders', 'list', '--status', 'pending', '--limit', '1', '--cursor', page.nextCursor, '--json'])).stdout,
    );
    expect(next.orders[0].id).toBe(a.id);
  });
});

describe('orders list --cursor', () => {
  test('when the cursor is not one the service issued, then a usage error names --cursor and what to use instead (exit 2), with or without --json', async () => {
    for (const args of [
      ['orders', 'list', '--cursor', 'garbage'],
      ['orders', 'list', '--cursor', 'garbage', '--json'],
    ]) {
      const run = await cli(args);
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(run.stderr).toContain('--cursor is not a cursor this service issued; use the nextCursor of a previous page');
      expect(run.stderr).not.toContain('invalid_request');
      expect(run.stderr).not.toContain('API contract');
    }
  });
});

describe('fulfill', () => {
  test('a batch with one failing order: exit 1, the others fulfilled, a summary naming the failure', async () => {
    const ok = [await chargedOrder(), await chargedOrder(), await chargedOrder()];
    const pending = await pendingOrder();
    const ids = [ok[0].id, pending.id, ok[1].id, ok[2].id];
    const run = await cli(['fulfill', ...ids]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`3 fulfilled, 1 failed: ${pending.id} order_not_charged`);
    for (const o of ok) expect(run.stdout).toMatch(new RegExp(`\\[\\d/4\\] fulfilled\\s+${o.id}`));
    expect(run.stdout).toMatch(new RegExp(`\\[\\d/4\\] FAILED\\s+${pending.id}\\s+order_not_charged`));
    for (const o of ok) expect(await statusOf(o.id)).toBe('fulfilled');
    expect(await statusOf(pending.id)).toBe('pending');
    for (const o of ok) {
      expect(fulfillment.calls.filter((c) => c.orderID === o.id).sort((x, y) => x.description.localeCompare(y.description))).toEqual([
        { description: 'Mug', quantity: 1, orderID: o.id },
        { description: 'Tea', quantity: 2, orderID: o.id },
      ]);
    }
    expect(fulfillment.calls.filter((c) => c.orderID === pending.id)).toEqual([]);
  });

  test('a fulfillment service failure fails that order only; --json has per-order results', async () => {
    const good = await chargedOrder();
    const bad = await chargedOrder(token(), { lineItems: [{ description: 'Broken', priceCents: 100, quantity: 1 }] });
    fulfillment.fail('Broken', 500);
    const run = await cli(['fulfill', good.id, bad.id, '--json']);
    expect(run.code).toBe(1);
    const out = JSON.parse(run.stdout);
    expect(out.summary).toEqual({ succeeded: 1, failed: 1, notAttempted: 0 });
    expect(out.results).toEqual([
      { id: good.id, ok: true, status: 'fulfilled' },
      expect.objectContaining({ id: bad.id, ok: false, code: 'fulfillment_failed' }),
    ]);
    expect(run.stderr).toContain(bad.id); // progress goes to stderr with --json
    expect(await statusOf(good.id)).toBe('fulfilled');
    expect(await statusOf(bad.id)).toBe('charged');
  });

  test('--all-charged fulfills every charged order, paging through them', async () => {
    const orders = [await chargedOrder(), await chargedOrder()];
    const run = await cli(['fulfill', '--all-charged']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\d+ fulfilled, 0 failed/);
    for (const o of orders) expect(await statusOf(o.id)).toBe('fulfilled');
    const left = JSON.parse((await cli(['orders', 'list', '--status', 'charged', '--json'])).stdout);
    expect(left.orders).toEqual([]);
    const again = await cli(['fulfill', '--all-charged']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('No charged orders to fulfill.');
  });
});

describe('cancel', () => {
  test('a charged order is refunded with its stored token and cancelled with the reason; a fulfilled one fails', async () => {
    const t = token();
    const order = await chargedOrder(t);
    const pending = await pendingOrder();
    const fulfilled = await chargedOrder();
    expect((await app.call('POST', `/orders/${fulfilled.id}/fulfill`, { staff: true })).status).toBe(200);
    const before = charge.calls.length;
    // Logs on (debug): the card token must not show up there either.
    const run = await cli(['cancel', order.id, pending.id, fulfilled.id, '--reason', 'Customer asked by phone'], { LOG_LEVEL: 'debug' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`cancelled\\s+${order.id}\\s+refunded \\$33\\.00`));
    expect(run.stdout).toContain(`2 cancelled ($33.00 refunded), 1 failed: ${fulfilled.id} order_fulfilled`);
    expect(run.stderr).toContain('"level"'); // the logs really were on
    expect(charge.calls.slice(before)).toEqual([{ cardToken: t, amountCents: -3300 }]);
    const shown = JSON.parse((await cli(['orders', 'show', order.id, '--json'])).stdout).order;
    expect(shown).toMatchObject({ status: 'cancelled', cancelReason: 'Customer asked by phone' });
    // What a staff member reading the order sees: how much went back.
    const human = await cli(['orders', 'show', order.id]);
    expect(human.stdout).toMatch(/Refunded\s+\$33\.00/);
    expect((await cli(['orders', 'show', pending.id])).stdout).not.toContain('Refunded');
    expect(await statusOf(pending.id)).toBe('cancelled');
    expect(await statusOf(fulfilled.id)).toBe('fulfilled');

    // Cancelling again is safe: success, nothing refunded twice.
    const again = await cli(['cancel', order.id, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).results).toEqual([{ id: order.id, ok: true, status: 'cancelled', refundedCents: 0 }]);
    expect(charge.calls.length).toBe(before + 1);
  });

  test('a CLI cancel while the server charges other orders against a slow charge service: never two /charge in flight', async () => {
    charge.default = { status: 201, delayMs: 30 };
    const t = token();
    const target = await chargedOrder(t, { lineItems: [{ description: 'Lamp', priceCents: 4999, quantity: 1 }] });
    const others = await Promise.all(Array.from({ length: 150 }, () => pendingOrder()));
    charge.maxInFlight = 0;
    const before = charge.calls.length;
    // Keep the server busy: five charges waiting in its queue at all times until the CLI is done,
    // however long the CLI takes to start.
    let cliDone = false;
    let next = 0;
    const statuses: number[] = [];
    const pump = async () => {
      while (!cliDone && next < others.length) {
        const o = others[next++];
        statuses.push((await app.call('POST', `/orders/${o.id}/charge`, { body: { cardToken: token() } })).status);
      }
    };
    const pumps = Promise.all(Array.from({ length: 5 }, pump));
    await charge.received(before + 1); // the server is charging
    const run = await cli(['cancel', target.id]);
    cliDone = true;
    await pumps;
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`cancelled  ${target.id}  refunded $49.99`);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(charge.maxInFlight).toBe(1);
    const calls = charge.calls.slice(before);
    const at = calls.findIndex((c) => c.amountCents < 0);
    expect(calls.filter((c) => c.amountCents < 0)).toEqual([{ cardToken: t, amountCents: -4999 }]);
    // The refund really went out between the server's charges.
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(calls.length - 1);
    expect(await statusOf(target.id)).toBe('cancelled');
  });
});

describe('payments in doubt', () => {
  /** A charge whose connection broke after it was sent: the order stays pending, the payment in doubt. */
  async function chargeInDoubt(): Promise<{ id: string; totalCents: number }> {
    const order = await pendingOrder();
    charge.next({ reset: true });
    const res = await app.call('POST', `/orders/${order.id}/charge`, { body: { cardToken: token() } });
    expect(res.body.code).toBe('payment_in_doubt');
    return order;
  }

  /** A refund whose connection broke: the order stays charged, the refund in doubt. */
  async function refundInDoubt(): Promise<{ id: string; totalCents: number }> {
    const order = await chargedOrder();
    charge.next({ reset: true });
    const res = await app.call('POST', `/orders/${order.id}/cancel`, { staff: true, body: {} });
    expect(res.body.code).toBe('payment_in_doubt');
    return order;
  }

  test('each kind is listed, then resolved as staff confirmed, and its order moves on', async () => {
    const chargeOk = await chargeInDoubt();
    const chargeNo = await chargeInDoubt();
    const refundOk = await refundInDoubt();
    const refundNo = await refundInDoubt();
    const orderIds = [chargeOk.id, chargeNo.id, refundOk.id, refundNo.id];

    const listed = await cli(['payments', 'in-doubt', '--json']);
    expect(listed.code).toBe(0);
    const payments: Record<string, unknown>[] = JSON.parse(listed.stdout).payments;
    expect(payments.map((p) => p.orderId).sort()).toEqual([...orderIds].sort());
    for (const p of payments) {
      expect(Object.keys(p).sort()).toEqual(['amountCents', 'kind', 'orderId', 'outcome', 'paymentId', 'startedAt']);
      expect(p.paymentId).toMatch(UUID);
      expect(new Date(String(p.startedAt)).toISOString()).toBe(p.startedAt);
    }
    const byOrder = new Map(payments.map((p) => [p.orderId as string, p]));
    expect(byOrder.get(chargeOk.id)).toMatchObject({ kind: 'charge', amountCents: 3300 });
    expect(byOrder.get(refundOk.id)).toMatchObject({ kind: 'refund', amountCents: -3300 });

    const human = await cli(['payments', 'in-doubt']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^PAYMENT\s+ORDER\s+KIND\s+AMOUNT\s+STARTED/);
    expect(human.stdout).toMatch(new RegExp(`${String(byOrder.get(refundOk.id)!.paymentId)}\\s+${refundOk.id}\\s+refund\\s+-\\$33\\.00`));
    expect(human.stdout).toMatch(new RegExp(`${String(byOrder.get(chargeOk.id)!.paymentId)}\\s+${chargeOk.id}\\s+charge\\s+\\$33\\.00`));
    expect(human.stdout).toContain('4 payments in doubt');

    // While in doubt, the orders are blocked.
    const blocked = await cli(['cancel', chargeOk.id]);
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toContain('payment_in_doubt');

    const resolve = (orderId: string, flag: string) => cli(['payments', 'resolve', String(byOrder.get(orderId)!.paymentId), flag]);
    const r1 = await resolve(chargeOk.id, '--succeeded');
    expect(r1.code).toBe(0);
    expect(r1.stdout).toContain(`Order ${chargeOk.id} is now charged.`);
    const r2 = await resolve(chargeNo.id, '--failed');
    expect(r2.code).toBe(0);
    expect(r2.stdout).toContain(`Order ${chargeNo.id} is now pending.`);
    const r3 = await cli(['payments', 'resolve', String(byOrder.get(refundOk.id)!.paymentId), '--succeeded', '--json']);
    expect(r3.code).toBe(0);
    expect(JSON.parse(r3.stdout)).toMatchObject({
      payment: { kind: 'refund', state: 'succeeded' },
      order: { id: refundOk.id, status: 'cancelled' },
    });
    const r4 = await resolve(refundNo.id, '--failed');
    expect(r4.code).toBe(0);
    expect(r4.stdout).toContain(`Order ${refundNo.id} is now charged.`);

    expect(await statusOf(chargeOk.id)).toBe('charged');
    expect(await statusOf(chargeNo.id)).toBe('pending');
    expect(await statusOf(refundOk.id)).toBe('cancelled');
    expect(await statusOf(refundNo.id)).toBe('charged');
    const states = await Promise.all(orderIds.map(async (id) => (await paymentsOf(id)).map((p) => `${p.kind}:${p.state}`)));
    expect(states).toEqual([
      ['charge:succeeded'],
      ['charge:failed'],
      ['charge:succeeded', 'refund:succeeded'],
      ['charge:succeeded', 'refund:failed'],
    ]);
    expect((await paymentsOf(chargeOk.id))[0].outcome).toBe('resolved by staff: succeeded');

    // Resolved: nothing in doubt, a second resolve is refused, and the orders can move on again.
    const none = await cli(['payments', 'in-doubt']);
    expect(none.stdout).toContain('No payments in doubt.');
    const twice = await resolve(chargeOk.id, '--failed');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('payment_not_in_doubt');
    const before = charge.calls.length;
    const cancelAgain = await cli(['cancel', refundNo.id]);
    expect(cancelAgain.code).toBe(0);
    expect(charge.calls.slice(before).map((c) => c.amountCents)).toEqual([-3300]);
    expect(await statusOf(refundNo.id)).toBe('cancelled');
  });

  test('an unknown or malformed payment ID is payment_not_found (exit 1), never a crash', async () => {
    const unknown = await cli(['payments', 'resolve', '0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10', '--succeeded']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('payment_not_found');
    const malformed = await cli(['payments', 'resolve', 'not-a-uuid', '--failed', '--json']);
    expect(malformed.code).toBe(1);
    expect(JSON.parse(malformed.stdout)).toMatchObject({ error: { code: 'payment_not_found' } });
  });
});

test('no output of any CLI run contained a card token', () => {
  expect(tokens.length).toBeGreaterThan(10);
  expect(printed.length).toBeGreaterThan(20);
  const all = printed.join('\n');
  for (const t of tokens) expect(all).not.toContain(t);
});

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { startSimulator, type Simulator } from '../src/simulate/upstreams.js';
import { newOrder, startTestApp } from './support/app.js';

const lines: string[] = [];
const log = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ chargeLatencyMs: 30, log });
});
afterAll(async () => {
  await sim.stop();
});

const charge = (cardToken: string) =>
  fetch(`${sim.url}/charge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ cardToken, amountCents: 500 }),
  });

test('when a charge is simulated, then it answers 201, or 402 for tok_decline tokens, and never logs the token', async () => {
  expect((await charge('tok_simulated_ok')).status).toBe(201);
  expect((await charge('tok_decline_insufficient')).status).toBe(402);
  expect(lines.join('')).not.toContain('tok_simulated_ok');
  expect(sim.overlaps()).toBe(0);
});

test('when two charges overlap, then the simulator counts it and logs it loudly', async () => {
  await Promise.all([charge('tok_a'), charge('tok_b')]);
  expect(sim.overlaps()).toBe(1);
  expect(lines.some((l) => l.includes('one-at-a-time rule is broken'))).toBe(true);
});

test('when a line item is fulfilled, then it answers 200', async () => {
  const res = await fetch(`${sim.url}/fulfill`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ description: 'Tea', quantity: 1, orderID: 'o1' }),
  });
  expect(res.status).toBe(200);
});

// The table of docs/frontend-guide.md (and the README) that tells frontend developers how to
// provoke each unhappy path with `make run`: every row is checked against what the simulator and
// order-up in front of it really do.
describe('the unhappy-path table of the docs', () => {
  interface Row {
    line: string;
    send: { kind: 'card'; token: string } | { kind: 'description'; prefix: string };
    simulator: { status: number } | 'never' | 'reset';
    orderUp: { status: number; code?: string };
  }

  async function rowsOf(file: string): Promise<Row[]> {
    const text = await readFile(path.join(process.cwd(), file), 'utf8');
    const lines = text.split('\n').map((l) => l.trim());
    const start = lines.findIndex((l) => /^\| you send \| the simulated service answers \| order-up answers \|$/.test(l));
    expect({ file, found: start >= 0 }).toEqual({ file, found: true });
    const rows: Row[] = [];
    for (const line of lines.slice(start + 2)) {
      if (!line.startsWith('|')) break;
      const [send, sim, orderUp] = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const card = /card token starting with `([^`]+)`/.exec(send)?.[1];
      const description = /description starting with `([^`]+)`/.exec(send)?.[1];
      const status = /^`(\d{3})`/.exec(sim)?.[1];
      const answer = /^`(\d{3})(?: (\w+))?`/.exec(orderUp);
      if (!answer) throw new Error(`no order-up answer in: ${line}`);
      rows.push({
        line,
        send: description
          ? { kind: 'description', prefix: description }
          : {
              kind: 'card',
              token: card ? `${card}_doc_test` : /any other card token/.test(send) ? 'tok_visa_doc_test' : `unreadable: ${send}`,
            },
        simulator: status
          ? { status: Number(status) }
          : /never answers/.test(sim)
            ? 'never'
            : /closes the connection/.test(sim)
              ? 'reset'
              : { status: -1 },
        orderUp: { status: Number(answer[1]), code: answer[2] },
      });
    }
    return rows;
  }

  /** What the simulator itself does with a request: its status, no answer within 500 ms, or a broken connection. */
  async function simulatorAnswer(pathname: string, method: string, body: unknown): Promise<Row['simulator']> {
    try {
      const res = await fetch(`${sim.url}${pathname}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(500),
      });
      return { status: res.status };
    } catch (err) {
      return (err as Error).name === 'TimeoutError' ? 'never' : 'reset';
    }
  }

  test('when the README and the guide show the table, then they show the same rows', async () => {
    expect(await rowsOf('README.md')).toEqual(await rowsOf('docs/frontend-guide.md'));
  });

  test('when each row is sent to the simulator, and through order-up to it, then both answer what the row says', async () => {
    const rows = await rowsOf('docs/frontend-guide.md');
    expect(rows.map((r) => r.send.kind === 'card' && r.send.token)).toEqual(
      expect.arrayContaining(['tok_decline_doc_test', 'tok_fail_doc_test', 'tok_hang_doc_test', 'tok_reset_doc_test', 'tok_visa_doc_test']),
    );
    expect(rows.some((r) => r.send.kind === 'description')).toBe(true);
    const app = await startTestApp({ chargeUrl: sim.url, fulfillmentUrl: sim.url, env: { UPSTREAM_TIMEOUT_MS: '300' } });
    try {
      const seen: Record<string, unknown>[] = [];
      const expected: Record<string, unknown>[] = [];
      for (const row of rows) {
        expected.push({ row: row.line, simulator: row.simulator, orderUp: row.orderUp });
        if (row.send.kind === 'card') {
          const simulator = await simulatorAnswer('/charge', 'POST', { cardToken: row.send.token, amountCents: 100 });
          const created = await app.call('POST', '/orders', { body: newOrder() });
          const res = await app.call('POST', `/orders/${created.body.order.id}/charge`, { body: { cardToken: row.send.token } });
          seen.push({ row: row.line, simulator, orderUp: { status: res.status, code: res.body?.code } });
          // A timed-out charge stays order-up's call in flight until it gives up on it: only then
          // may this test call the simulator directly again (it takes one charge at a time).
          await app.rt.services.charge.drain();
        } else {
          // "any case": the prefix as written and capitalised.
          const descriptions = [`${row.send.prefix}-doc-test`, `${row.send.prefix[0].toUpperCase()}${row.send.prefix.slice(1)} doc test`];
          const answers = await Promise.all(
            descriptions.map((description) => simulatorAnswer('/fulfill', 'PUT', { description, quantity: 1, orderID: 'o1' })),
          );
          expect(answers[1]).toEqual(answers[0]);
          const created = await app.call('POST', '/orders', {
            body: newOrder({ lineItems: descriptions.map((description) => ({ description, priceCents: 100, quantity: 1 })) }),
          });
          const id = created.body.order.id;
          expect((await app.call('POST', `/orders/${id}/charge`, { body: { cardToken: 'tok_visa_doc_test' } })).status).toBe(200);
          const res = await app.call('POST', `/orders/${id}/fulfill`, { staff: true });
          seen.push({ row: row.line, simulator: answers[0], orderUp: { status: res.status, code: res.body?.code } });
        }
      }
      for (const e of expected) if ((e.orderUp as { code?: string }).code === undefined) delete (e.orderUp as { code?: string }).code;
      for (const s of seen) if ((s.orderUp as { code?: string }).code === undefined) delete (s.orderUp as { code?: string }).code;
      expect(seen).toEqual(expected);
      expect(sim.overlaps()).toBe(1); // only the deliberate overlap of the test above
    } finally {
      await app.stop();
    }
  });
});

import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startSimulator, type Simulator } from '../src/simulate/upstreams.js';

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
  fetch(`${sim.url}/charge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cardToken, amountCents: 500 }) });

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

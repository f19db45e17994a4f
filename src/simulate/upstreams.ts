import http from 'node:http';
import type { Logger } from 'pino';
import { listen, stopNow } from '../listen.js';

export interface SimulatorOptions {
  port?: number;
  host?: string;
  /** How long a charge takes; overlapping charges are easier to spot with some latency. */
  chargeLatencyMs?: number;
  log: Logger;
}

export interface Simulator {
  url: string;
  /** Charges that overlapped another: must stay 0, or order-up's queue is broken. */
  overlaps(): number;
  stop(): Promise<void>;
}

/** What the simulated charge service does with a card token (docs/frontend-guide.md has the table). */
export type SimulatedCharge = 'accept' | 'decline' | 'fail' | 'hang' | 'reset';

/** Card token prefixes that make the simulated charge service misbehave; any other token is charged. */
export const SIMULATED_CHARGE_PREFIXES: [prefix: string, answer: Exclude<SimulatedCharge, 'accept'>][] = [
  ['tok_decline', 'decline'], // 402: order-up answers 402 payment_declined
  ['tok_fail', 'fail'], // 500: 502 charge_failed
  ['tok_hang', 'hang'], // never answers: 504 upstream_timeout after UPSTREAM_TIMEOUT_MS, in doubt
  ['tok_reset', 'reset'], // connection destroyed after the request: 502 payment_in_doubt
];

/** Line item descriptions starting with this (any case) make the simulated fulfillment service answer 500. */
export const SIMULATED_FULFILLMENT_FAILURE_PREFIX = 'fail';

export function simulatedCharge(cardToken: string): SimulatedCharge {
  return SIMULATED_CHARGE_PREFIXES.find(([prefix]) => cardToken.startsWith(prefix))?.[1] ?? 'accept';
}

/**
 * Simulated upstreams for local work, on one port. POST /charge answers 201 after a latency, or
 * misbehaves as its card token asks (SIMULATED_CHARGE_PREFIXES), and shouts when two charges
 * overlap, since the real service takes one at a time. PUT /fulfill answers 200, or 500 for a
 * description starting with "fail". Tokens are never logged.
 */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const latency = opts.chargeLatencyMs ?? 50;
  /** Charges not answered yet; `abandoned` once the client gave up on one (closed its connection) unanswered. */
  const inFlight = new Set<{ abandoned: boolean }>();
  let overlaps = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // What order-up sends (openapi/charge-service.yaml, openapi/fulfillment-service.yaml).
      let body: { cardToken?: string; amountCents?: number; orderID?: string; description?: string; quantity?: number } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof body;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/charge') {
        const call = { abandoned: false };
        inFlight.add(call);
        const finish = () => inFlight.delete(call);
        // Until the client gives up on it (order-up does after twice UPSTREAM_TIMEOUT_MS more), a
        // hanging charge is still in flight.
        res.on('close', () => {
          if (inFlight.has(call)) call.abandoned = true;
          finish();
        });
        if (inFlight.size > 1) {
          // Looked at again in a moment: the close of a charge its client just gave up on (and then
          // sent the next one) may reach us after that next request. That one was no overlap.
          const others = [...inFlight].filter((c) => c !== call);
          setTimeout(() => {
            if (others.every((c) => c.abandoned)) return;
            overlaps += 1;
            opts.log.error(
              { inFlight: inFlight.size },
              'SIMULATED CHARGE SERVICE: overlapping /charge requests - the one-at-a-time rule is broken',
            );
          }, 20);
        }
        const answer = simulatedCharge(String(body.cardToken ?? ''));
        if (answer === 'hang') {
          opts.log.info({ amountCents: body.amountCents, answer }, 'simulated charge: never answering');
          return;
        }
        setTimeout(() => {
          finish();
          opts.log.info({ amountCents: body.amountCents, answer }, 'simulated charge');
          if (answer === 'reset') {
            req.socket.destroy();
            return;
          }
          const [status, reply] =
            answer === 'decline'
              ? [402, { error: 'card declined' }]
              : answer === 'fail'
                ? [500, { error: 'simulated failure' }]
                : [201, { id: `ch_${Date.now()}` }];
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(reply));
        }, latency);
        return;
      }
      if (req.method === 'PUT' && req.url === '/fulfill') {
        const failed = String(body.description ?? '')
          .toLowerCase()
          .startsWith(SIMULATED_FULFILLMENT_FAILURE_PREFIX);
        opts.log.info({ orderID: body.orderID, description: body.description, quantity: body.quantity, failed }, 'simulated fulfillment');
        res.writeHead(failed ? 500 : 200, { 'content-type': 'application/json' }).end(failed ? '{"error":"simulated failure"}' : '{}');
        return;
      }
      res.writeHead(404).end();
    });
  });
  const { port } = await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, overlaps: () => overlaps, stop: () => stopNow(server) };
}

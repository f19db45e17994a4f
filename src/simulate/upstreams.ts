import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

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

/**
 * Simulated upstreams for local work, on one port: POST /charge answers 201 (402 for card tokens
 * starting with `tok_decline`) after a latency and shouts when two charges overlap, since the real
 * service takes one at a time; PUT /fulfill answers 200. Tokens are never logged.
 */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const latency = opts.chargeLatencyMs ?? 50;
  let inFlight = 0;
  let overlaps = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/charge') {
        inFlight += 1;
        if (inFlight > 1) {
          overlaps += 1;
          opts.log.error({ inFlight }, 'SIMULATED CHARGE SERVICE: overlapping /charge requests - the one-at-a-time rule is broken');
        }
        const declined = String(body.cardToken ?? '').startsWith('tok_decline');
        setTimeout(() => {
          inFlight -= 1;
          opts.log.info({ amountCents: body.amountCents, declined }, 'simulated charge');
          res.writeHead(declined ? 402 : 201, { 'content-type': 'application/json' });
          res.end(JSON.stringify(declined ? { error: 'card declined' } : { id: `ch_${Date.now()}` }));
        }, latency);
        return;
      }
      if (req.method === 'PUT' && req.url === '/fulfill') {
        opts.log.info({ orderID: body.orderID, description: body.description, quantity: body.quantity }, 'simulated fulfillment');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    overlaps: () => overlaps,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChargeCall {
  cardToken: string;
  amountCents: number;
}

/** How the fake answers one request: a status after a delay, a broken connection, or never. */
export type ChargeBehaviour = { status: number; delayMs?: number } | { reset: true; delayMs?: number } | { hang: true };

/**
 * A real charge service stand-in on 127.0.0.1: records every request body, counts requests in
 * flight (and the most ever at once), and answers as told - per request via `next`, else `default`.
 */
export class FakeChargeService {
  readonly calls: ChargeCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  default: ChargeBehaviour = { status: 201 };
  private readonly scripted: ChargeBehaviour[] = [];
  private readonly waiters: { count: number; resolve: () => void }[] = [];
  private readonly hung: http.ServerResponse[] = [];
  private server!: http.Server;
  url = '';

  static async start(): Promise<FakeChargeService> {
    const fake = new FakeChargeService();
    fake.server = http.createServer((req, res) => fake.handle(req, res));
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The next requests get these behaviours, in order; after that, `default`. */
  next(...behaviours: ChargeBehaviour[]): this {
    this.scripted.push(...behaviours);
    return this;
  }

  /** Resolves once `count` requests have arrived in total (an event, not a sleep). */
  received(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Answers every hung request with `status` (or leaves them to be destroyed at stop). */
  releaseHung(status = 201): void {
    for (const res of this.hung.splice(0)) {
      this.inFlight -= 1;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    }
  }

  async stop(): Promise<void> {
    for (const res of this.hung.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.calls.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChargeCall);
      for (const w of this.waiters.filter((w) => this.calls.length >= w.count)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
      const behaviour = this.scripted.shift() ?? this.default;
      if ('hang' in behaviour) {
        this.hung.push(res);
        return;
      }
      const finish = () => {
        this.inFlight -= 1;
        if ('reset' in behaviour) {
          req.socket.destroy();
          return;
        }
        res.writeHead(behaviour.status, { 'content-type': 'application/json' }).end('{}');
      };
      if (behaviour.delayMs) setTimeout(finish, behaviour.delayMs);
      else finish();
    });
  }
}

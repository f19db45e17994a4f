import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FulfillCall {
  description: string;
  quantity: number;
  orderID: string;
}

/**
 * A real fulfillment service stand-in on 127.0.0.1. It records every PUT /fulfill body and answers
 * 200 unless `fail(description)` says otherwise (a status, or `hang` to provoke a timeout).
 */
export class FakeFulfillmentService {
  readonly calls: FulfillCall[] = [];
  private readonly failures = new Map<string, number | 'hang'>();
  private readonly hung: http.ServerResponse[] = [];
  private server!: http.Server;
  url = '';

  static async start(): Promise<FakeFulfillmentService> {
    const fake = new FakeFulfillmentService();
    fake.server = http.createServer((req, res) => fake.handle(req, res));
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  fail(description: string, how: number | 'hang' = 500): this {
    this.failures.set(description, how);
    return this;
  }

  heal(): this {
    this.failures.clear();
    return this;
  }

  /** Answers every hung request 200. */
  releaseHung(): void {
    for (const res of this.hung.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  }

  async stop(): Promise<void> {
    for (const res of this.hung.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FulfillCall;
      this.calls.push(body);
      const failure = req.method === 'PUT' && req.url === '/fulfill' ? this.failures.get(body.description) : 405;
      if (failure === 'hang') {
        this.hung.push(res);
        return;
      }
      res.writeHead(failure ?? 200, { 'content-type': 'application/json' }).end('{}');
    });
  }
}

import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL, so a test can take the database away from one process (all
 * its connections broken, new ones refused) and give it back, while everything else keeps its own
 * direct connections.
 */
export class DbProxy {
  private readonly open = new Set<net.Socket>();
  private down = false;
  private delayMs = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(databaseUrl: string): Promise<DbProxy> {
    const u = new URL(databaseUrl);
    let proxy!: DbProxy;
    const server = net.createServer((client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new DbProxy(server, { host: u.hostname, port: Number(u.port || 5432) });
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string {
    const u = new URL(databaseUrl);
    u.hostname = '127.0.0.1';
    u.port = String((this.server.address() as net.AddressInfo).port);
    return u.toString();
  }

  /** Breaks every connection through the proxy and refuses new ones until `restore`. */
  cut(): void {
    this.down = true;
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  restore(): void {
    this.down = false;
  }

  /** Holds back every answer of the database by `ms` (0: no more). */
  slow(ms: number): void {
    this.delayMs = ms;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.open.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.open.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream);
    // The database's answers can be held back (`slow`), in order.
    let last = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      const delayMs = this.delayMs;
      last = last
        .then(() => (delayMs > 0 ? new Promise((r) => setTimeout(r, delayMs)) : undefined))
        .then(() => {
          if (!client.destroyed) client.write(chunk);
        });
    });
  }
}

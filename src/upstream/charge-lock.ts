import pg from 'pg';
import { LOCK_NS_CHARGE } from '../advisory-locks.js';

/**
 * The cross-process half of "one /charge in flight": a session advisory lock on a dedicated
 * connection. The process keeps it while its own queue has work (so back-to-back charges cost no
 * extra round trips) but hands it over after a bounded streak, so other processes are not starved.
 */
export class ChargeLock {
  private client: pg.Client | undefined;
  private held = false;
  private heldSince = 0;
  private streak = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly maxStreak = 50,
    private readonly maxHoldMs = 250,
  ) {}

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    // TCP keep-alive: a connection that silently died (and with it our lock) is noticed, not trusted.
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'order-up charge lock', keepAlive: true });
    client.on('error', () => {
      // The server dropped us, and with the connection the lock: take it again next time.
      this.held = false;
      if (this.client === client) this.client = undefined;
    });
    await client.connect();
    this.client = client;
    return client;
  }

  async acquire(): Promise<void> {
    if (this.held) {
      this.streak += 1;
      return;
    }
    const client = await this.connection();
    await client.query('select pg_advisory_lock($1, 0)', [LOCK_NS_CHARGE]);
    this.held = true;
    this.heldSince = Date.now();
    this.streak = 1;
  }

  /** Called after each call (or given-up place): lets go when nothing else waits here, or when others have waited long enough. */
  async keepOrRelease(moreWaiting: boolean): Promise<void> {
    if (!this.held) return;
    if (moreWaiting && this.streak < this.maxStreak && Date.now() - this.heldSince < this.maxHoldMs) return;
    await this.release();
  }

  async release(): Promise<void> {
    if (!this.held || !this.client) return;
    this.held = false;
    await this.client.query('select pg_advisory_unlock($1, 0)', [LOCK_NS_CHARGE]).catch(() => {
      // A failed unlock means the connection is broken; ending it drops the lock anyway.
      this.client?.end().catch(() => undefined);
      this.client = undefined;
    });
  }

  async close(): Promise<void> {
    await this.release();
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

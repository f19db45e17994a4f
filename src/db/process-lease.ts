import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { LOCK_NS_PROCESS } from '../advisory-locks.js';
import { within } from '../timeout.js';

/** How often the lease connection is pinged, and how long it may stay silent before it is given up. */
export interface PingTimes {
  pingMs: number;
  silentLimitMs: number;
}

export interface LeaseEvents {
  /** The connection, and with it the lock, is gone. Called once. */
  lost(why: string): void;
  /** The connection has not answered a ping in time (true), or answers again (false). */
  silent(silent: boolean): void;
}

/**
 * One lease: a fresh key and a session advisory lock on it, held on a connection of its own.
 * Work a process owns (an order's operation, a `started` payment) carries the key it had then;
 * another process may treat the work as abandoned only when it can take that lock itself - i.e.
 * when the owner's session is gone.
 */
export class ProcessLease {
  private constructor(
    readonly key: number,
    private readonly client: pg.Client,
    private readonly state: { released: boolean; ping: NodeJS.Timeout | undefined },
    /** Of the earlier keys asked for, those whose locks this lease holds too. */
    readonly keptKeys: number[],
  ) {}

  /**
   * `alsoHold`: keys this process held before (a lost connection): their locks are taken again
   * where still free, so work this process still does under them is not taken for abandoned.
   */
  static async acquire(databaseUrl: string, times: PingTimes, events: LeaseEvents, alsoHold: number[] = []): Promise<ProcessLease> {
    const client = new pg.Client({
      connectionString: databaseUrl,
      application_name: 'order-up lease',
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    const lease = { released: false, ping: undefined as NodeJS.Timeout | undefined };
    const lost = (why: string) => {
      if (lease.released) return;
      lease.released = true;
      clearInterval(lease.ping);
      client.end().catch(() => undefined);
      events.lost(why);
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    try {
      await client.connect();
      const { rows } = await client.query<{ key: number }>(`select nextval('order_up_process_key')::int as key`);
      const key = rows[0].key;
      await client.query('select pg_advisory_lock($1, $2)', [LOCK_NS_PROCESS, key]);
      const kept = alsoHold.length === 0 ? [] : await holdAgain(client, alsoHold);
      // The connection may have died in the same breath as the lock was granted.
      if (lease.released) throw new Error('the lease connection ended while the lease was taken');
      lease.ping = setInterval(ping(client, times, events, lost), times.pingMs).unref();
      return new ProcessLease(key, client, lease, kept);
    } catch (err) {
      // E.g. the schema is not there yet, or the database is down: no lease was taken, so nothing to guard.
      lease.released = true;
      clearInterval(lease.ping);
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async release(): Promise<void> {
    this.state.released = true;
    clearInterval(this.state.ping);
    // A frozen server never finishes a graceful close: do not let it hold up the process's exit.
    await within(
      this.client.end().catch(() => undefined),
      2000,
    );
  }
}

/** Takes the locks of earlier keys that nobody holds; another process holding one is recovering its work right now. */
async function holdAgain(client: pg.Client, keys: number[]): Promise<number[]> {
  const { rows } = await client.query<{ key: number }>('select k as key from unnest($2::int[]) as k where pg_try_advisory_lock($1, k)', [
    LOCK_NS_PROCESS,
    keys,
  ]);
  return rows.map((r) => r.key);
}

/**
 * A connection can also fall silent (a frozen server, a dropped route) without an error. A slow
 * answer is not a lost lock, and ending the session would release the lock for real while our
 * work is under way - so a connection that does not answer a ping within `pingMs` only makes the
 * process stop taking new work (`silent`) until it answers again. One silent for `silentLimitMs`
 * is given up.
 */
function ping(client: pg.Client, times: PingTimes, events: LeaseEvents, lost: (why: string) => void): () => void {
  let pending = false;
  let silentSince = 0;
  return () => {
    if (pending) {
      if (silentSince > 0 && Date.now() - silentSince >= times.silentLimitMs)
        lost(`the lease connection was silent for ${times.silentLimitMs} ms`);
      return;
    }
    pending = true;
    const slow = setTimeout(() => {
      silentSince = Date.now();
      events.silent(true);
    }, times.pingMs);
    client.query('select 1').then(
      () => {
        clearTimeout(slow);
        pending = false;
        if (silentSince > 0) events.silent(false);
        silentSince = 0;
      },
      (err: Error) => {
        clearTimeout(slow);
        lost(err.message);
      },
    );
  };
}

/**
 * This process's identity in the database, kept across a lost connection. Losing the lease means
 * other processes may now take our work for abandoned and recover it, so from that moment the
 * process starts no new work (`held` is false: claims and /readyz answer 503 not_ready) and tries to
 * take a new lease under a new key. The new lease takes the old keys' locks too, where nobody has
 * taken them meanwhile: from then on this process is known to be alive under them again, so work
 * it still does under them (an outcome being recorded) is not recovered by others - but nothing new
 * is sent under an old key (`holds`). Work already under way finishes or fails on its own: every
 * write of its outcome is guarded by its claim's token, so work another process recovered meanwhile
 * writes nothing and stays in doubt - never done twice.
 */
export class Lease {
  private current: ProcessLease | undefined;
  private lastKey: number;
  /** Keys this process held before: work of this process under them is its own, not abandoned. */
  private readonly previous = new Set<number>();
  private closed = false;
  private silent = false;

  private constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly times: PingTimes,
    first: ProcessLease,
  ) {
    this.current = first;
    this.lastKey = first.key;
  }

  static async acquire(databaseUrl: string, log: Logger, times: PingTimes): Promise<Lease> {
    let lease: Lease | undefined;
    let first: ProcessLease | undefined;
    // Events of a lease that has been replaced meanwhile are not about the current one (and events
    // while it is still being taken surface as acquire's own failure).
    const ours = () => lease !== undefined && first !== undefined && lease.current === first;
    first = await ProcessLease.acquire(databaseUrl, times, {
      lost: (why) => {
        if (ours()) lease!.lost(why);
      },
      silent: (silent) => {
        if (ours()) lease!.setSilent(silent);
      },
    });
    lease = new Lease(databaseUrl, log, times, first);
    return lease;
  }

  /** The key new work is recorded under (the last one held, while a new lease is being taken). */
  get key(): number {
    return this.lastKey;
  }

  get held(): boolean {
    return this.current !== undefined && !this.silent;
  }

  /** True while `key` is the lease this process holds right now (and its connection answers). */
  holds(key: number): boolean {
    return this.current?.key === key && !this.silent;
  }

  isOwn(owner: number): boolean {
    return owner === this.lastKey || this.previous.has(owner);
  }

  async release(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    await current?.release();
  }

  private setSilent(silent: boolean): void {
    if (this.silent === silent || this.closed) return;
    this.silent = silent;
    if (silent)
      this.log.error({ key: this.lastKey }, 'the database lease connection does not answer: order-up takes no new work until it does');
    else this.log.warn({ key: this.lastKey }, 'the database lease connection answers again: taking work again');
  }

  private lost(why: string): void {
    if (this.closed || !this.current) return;
    this.previous.add(this.current.key);
    this.current = undefined;
    this.silent = false;
    this.log.error({ why, key: this.lastKey }, 'order-up lost its database lease: it takes no new work until it has a new one');
    void this.renew();
  }

  private async renew(): Promise<void> {
    for (let delayMs = 200; !this.closed; delayMs = Math.min(delayMs * 2, 5000)) {
      await sleep(delayMs, undefined, { ref: false });
      if (this.closed) return;
      try {
        let fresh: ProcessLease | undefined;
        const earlier = [...this.previous];
        const lease = await ProcessLease.acquire(
          this.databaseUrl,
          this.times,
          {
            lost: (why) => {
              if (fresh && this.current === fresh) this.lost(why);
            },
            silent: (silent) => {
              if (fresh && this.current === fresh) this.setSilent(silent);
            },
          },
          earlier,
        );
        fresh = lease;
        if (this.closed) {
          await lease.release();
          return;
        }
        this.current = lease;
        this.lastKey = lease.key;
        const missed = earlier.filter((k) => !lease.keptKeys.includes(k));
        this.log.warn({ key: lease.key, earlierKeys: lease.keptKeys, missed }, 'order-up has a new database lease: taking work again');
        return;
      } catch (err) {
        this.log.debug({ err }, 'no new database lease yet');
      }
    }
  }
}

import pg from 'pg';
import type { EntityManager } from '@mikro-orm/postgresql';

// Advisory lock namespaces (the first of the two int4 keys). Fixed numbers: every process must agree.
export const LOCK_NS_PROCESS = 7100;
export const LOCK_NS_CHARGE = 7101;

/**
 * This process's identity in the database. At start a process takes a fresh key and holds a
 * session advisory lock on it on a connection of its own until it exits. Work it owns (an order's
 * operation, a `started` payment) carries that key; another process may treat the work as abandoned
 * only when it can take that lock itself - i.e. when the owner's session is gone.
 */
export class ProcessLease {
  private constructor(
    readonly key: number,
    private readonly client: pg.Client,
    private readonly state: { released: boolean },
  ) {}

  static async acquire(databaseUrl: string): Promise<ProcessLease> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: 'order-up lease', keepAlive: true });
    await client.connect();
    const lease = { released: false };
    // Losing this connection loses the lock, and other processes would then take our work for
    // abandoned and recover it while we still do it. So losing it ends the process at once: what
    // it had under way becomes in doubt, which is safe; carrying on would not be.
    const lost = (why: string) => {
      if (lease.released) return;
      process.stderr.write(`${JSON.stringify({ level: 60, msg: 'order-up lost its database lease; exiting so no work is done twice', why })}\n`);
      process.exit(1);
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    try {
      const { rows } = await client.query<{ key: number }>(`select nextval('order_up_process_key')::int as key`);
      const key = rows[0].key;
      await client.query('select pg_advisory_lock($1, $2)', [LOCK_NS_PROCESS, key]);
      return new ProcessLease(key, client, lease);
    } catch (err) {
      // E.g. the schema is not there yet: no lease was taken, so nothing to guard; let go quietly.
      lease.released = true;
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async release(): Promise<void> {
    this.state.released = true;
    await this.client.end().catch(() => undefined);
  }
}

/** True while the process that took `owner` still holds its lease (checked inside a short transaction). */
export async function isOwnerAlive(em: EntityManager, owner: number, self: number): Promise<boolean> {
  if (owner === self) return true;
  return em.transactional(async (tx) => {
    const rows = await tx.getConnection().execute<{ free: boolean }[]>(
      'select pg_try_advisory_xact_lock(?, ?) as free',
      [LOCK_NS_PROCESS, owner],
      'all',
      tx.getTransactionContext(),
    );
    return !rows[0].free;
  });
}

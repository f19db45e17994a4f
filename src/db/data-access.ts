import { LOCK_NS_PROCESS } from '../advisory-locks.js';
import { ClaimsRepository, recoverOwnerWork } from './claims-repo.js';
import { Database, type DatabaseOptions } from './database.js';
import { EventsRepository } from './events-repo.js';
import { IdempotencyRepository } from './idempotency-repo.js';
import { OrdersRepository } from './orders-repo.js';
import { PaymentsRepository } from './payments-repo.js';

/** The repositories, on the pool or on one transaction's connection. */
export interface Repositories {
  orders: OrdersRepository;
  payments: PaymentsRepository;
  claims: ClaimsRepository;
  idempotency: IdempotencyRepository;
  events: EventsRepository;
}

/**
 * All the SQL of order-up's domain lives behind this: plain records in, plain records out. One
 * per process; domain functions reach it through their DomainContext.
 */
export class DataAccess implements Repositories {
  readonly orders: OrdersRepository;
  readonly payments: PaymentsRepository;
  readonly claims: ClaimsRepository;
  readonly idempotency: IdempotencyRepository;
  readonly events: EventsRepository;
  private readonly db: Database;

  constructor(url: string, opts: DatabaseOptions = {}) {
    this.db = new Database(url, opts);
    this.orders = new OrdersRepository(this.db);
    this.payments = new PaymentsRepository(this.db);
    this.claims = new ClaimsRepository(this.db);
    this.idempotency = new IdempotencyRepository(this.db);
    this.events = new EventsRepository(this.db);
  }

  /** Statements sent to the database so far (each a round trip). */
  get statements(): number {
    return this.db.statements;
  }

  /** Runs `work` on repositories bound to one transaction. */
  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction((q) =>
      work({
        orders: new OrdersRepository(q),
        payments: new PaymentsRepository(q),
        claims: new ClaimsRepository(q),
        idempotency: new IdempotencyRepository(q),
        events: new EventsRepository(q),
      }),
    );
  }

  /** Releases a gone process's claims and marks its started payments in doubt (see recoverOwnerWork). */
  recoverOwner(owner: number, outcome: string): Promise<number> {
    return recoverOwnerWork(this.db, owner, outcome);
  }

  /**
   * Whether the process with lease key `owner` is alive: it holds its session advisory lock for as
   * long as it lives (see process-lease.ts). A transaction-scoped try-lock of one statement tells,
   * and lets go again at once.
   */
  async isOwnerAlive(owner: number): Promise<boolean> {
    const rows = await this.db.query<{ free: boolean }>('select pg_try_advisory_xact_lock($1, $2) as free', [LOCK_NS_PROCESS, owner]);
    return !rows[0].free;
  }

  /** Resolves when the database answers a trivial statement. */
  async ping(): Promise<void> {
    await this.db.query('select 1');
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

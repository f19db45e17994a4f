import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { startEmbeddedDatabase } from './db/embedded/index.js';
import { DataAccess } from './db/data-access.js';
import { applyMigrations } from './db/schema.js';
import { Lease } from './db/process-lease.js';
import { SYSTEM, type Actor, type DomainContext, type Services } from './domain/context.js';
import { recoverAbandonedWork } from './domain/exclusive.js';
import { purgeExpiredKeys } from './domain/idempotency.js';
import { ChargeLock } from './upstream/charge-lock.js';
import { ChargeService } from './upstream/charge-service.js';
import { FulfillmentService } from './upstream/fulfillment-service.js';
import { Metrics } from './metrics.js';

const PURGE_EVERY_MS = 60_000;

/** The long-lived parts of one order-up process (server or CLI run), and how to let go of them. */
export interface Runtime {
  config: Config;
  log: Logger;
  /** The data-access layer every domain function works through. */
  db: DataAccess;
  databaseUrl: string;
  services: Services;
  /** This process's Prometheus metrics (src/metrics.ts). */
  metrics: Metrics;
  /** A domain context for one request or command: its log, and who acts (by default the process's actor). */
  context(log?: Logger, actor?: Actor): DomainContext;
  /** Waits for queued charges and refunds, then closes connections (and the embedded database if we own it). */
  close(): Promise<void>;
}

/**
 * The database to work on: DATABASE_URL, or else the embedded PostgreSQL under ORDER_UP_DATA_DIR,
 * started (or joined, when another order-up process already runs it). `stop` lets go of what was started.
 */
export async function openDatabase(config: Config, log: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  const db = await startEmbeddedDatabase({ dataDir: path.resolve(config.dataDir), log: (msg: string) => log.info(msg) });
  return { url: db.url, stop: () => db.stop() };
}

/**
 * Opens the database (openDatabase); optionally applies pending migrations; takes this process's
 * lease and recovers the work of processes that are gone.
 */
export async function openRuntime(
  config: Config,
  log: Logger,
  /** `inDoubtRefreshMs`: how often the in-doubt gauge is read while serving (default 15 s; tests make it short). */
  opts: { migrate: boolean; actor?: Actor; inDoubtRefreshMs?: number },
): Promise<Runtime> {
  const database = await openDatabase(config, log);
  const url = database.url;
  const stopDatabase = () => database.stop();
  let lease: Lease | undefined;
  try {
    if (opts.migrate) {
      const applied = await applyMigrations(url);
      if (applied.length > 0) log.info({ applied }, 'applied database migrations');
    }
    lease = await Lease.acquire(url, log, { pingMs: config.leasePingMs, silentLimitMs: config.leaseSilentLimitMs });
  } catch (err) {
    await stopDatabase();
    throw err;
  }
  const leaseRef = lease;
  const metrics = new Metrics({ inDoubtRefreshMs: opts.inDoubtRefreshMs });
  metrics.watchLease(leaseRef);
  const services: Services = {
    get processKey() {
      return leaseRef.key;
    },
    lease: leaseRef,
    activeClaims: new Set(),
    activeKeys: new Map(),
    outcomes: { ...config.outcomes, pending: new Set() },
    charge: new ChargeService(
      config.chargeServiceUrl,
      config.upstreamTimeoutMs,
      config.chargeQueueMax,
      new ChargeLock(url),
      metrics.charge,
    ),
    fulfillment: new FulfillmentService(config.fulfillmentServiceUrl, config.upstreamTimeoutMs, metrics.fulfillment),
  };
  const db = new DataAccess(url, { timeoutMs: config.dbTimeoutMs });
  const rt: Runtime = {
    config,
    log,
    db,
    databaseUrl: url,
    services,
    metrics,
    context: (l = log, actor = opts.actor ?? SYSTEM) => ({ db, log: l, services, actor }),
    async close() {
      clearInterval(purge);
      // Known outcomes still being written (the database was away) are written before the lease goes.
      if (services.outcomes.pending.size > 0) {
        log.warn({ payments: services.outcomes.pending.size }, 'waiting for payment outcomes to be recorded before stopping');
        await Promise.allSettled([...services.outcomes.pending]);
      }
      await metrics.stop();
      await services.charge.close();
      await leaseRef.release();
      await db.close();
      await stopDatabase();
      // Log lines are written asynchronously (log.ts): whatever is still buffered goes out now.
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    },
  };
  // Expired Idempotency-Key answers are purged in the background (a replay after expiry runs as new
  // whether or not its row is gone yet).
  const purge = setInterval(() => {
    purgeExpiredKeys(rt.context()).catch((err: unknown) => log.warn({ err }, 'could not purge expired idempotency keys'));
  }, PURGE_EVERY_MS).unref();
  try {
    await recoverAbandonedWork(rt.context(log, SYSTEM));
  } catch (err) {
    await rt.close();
    throw err;
  }
  return rt;
}

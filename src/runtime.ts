import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { startEmbeddedDatabase } from './db/embedded.js';
import { DataAccess } from './db/data-access.js';
import { migrate, openOrm, type Orm } from './db/orm.js';
import { Lease } from './db/process-lease.js';
import type { DomainContext, Services } from './domain/context.js';
import { recoverAbandonedWork } from './domain/exclusive.js';
import { ChargeLock } from './upstream/charge-lock.js';
import { ChargeService } from './upstream/charge-service.js';
import { FulfillmentService } from './upstream/fulfillment-service.js';
import { Metrics } from './metrics.js';

/** The long-lived parts of one order-up process (server or CLI run), and how to let go of them. */
export interface Runtime {
  config: Config;
  log: Logger;
  /** MikroORM: the schema and its migrations (and tests' direct looks at the tables). */
  orm: Orm;
  /** The data-access layer every domain function works through. */
  db: DataAccess;
  databaseUrl: string;
  services: Services;
  /** This process's Prometheus metrics (src/metrics.ts). */
  metrics: Metrics;
  /** A domain context for one request or command (its own log). */
  context(log?: Logger): DomainContext;
  /** Waits for queued charges and refunds, then closes connections (and the embedded database if we own it). */
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts (or joins, when another order-up process already runs it)
 * the embedded PostgreSQL under ORDER_UP_DATA_DIR; optionally applies pending migrations; takes
 * this process's lease and recovers the work of processes that are gone.
 */
export async function openRuntime(
  config: Config,
  log: Logger,
  /** `inDoubtRefreshMs`: how often the in-doubt gauge is read while serving (default 15 s; tests make it short). */
  opts: { migrate: boolean; inDoubtRefreshMs?: number },
): Promise<Runtime> {
  let databaseUrl = config.databaseUrl;
  let stopDatabase = async () => {};
  if (!databaseUrl) {
    const db = await startEmbeddedDatabase({ dataDir: path.resolve(config.dataDir), log: (msg: string) => log.info(msg) });
    databaseUrl = db.url;
    stopDatabase = db.stop;
  }
  const url = databaseUrl;
  let orm: Orm | undefined;
  let lease: Lease | undefined;
  try {
    orm = await openOrm(url);
    if (opts.migrate) {
      const applied = await migrate(orm, url);
      if (applied.length > 0) log.info({ applied }, 'applied database migrations');
    }
    lease = await Lease.acquire(url, log, { pingMs: config.leasePingMs, silentLimitMs: config.leaseSilentLimitMs });
  } catch (err) {
    await orm?.close(true);
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
    charge: new ChargeService(config.chargeServiceUrl, config.upstreamTimeoutMs, config.chargeQueueMax, new ChargeLock(url), metrics.charge),
    fulfillment: new FulfillmentService(config.fulfillmentServiceUrl, config.upstreamTimeoutMs, metrics.fulfillment),
  };
  const ormRef = orm;
  const db = new DataAccess(url);
  const rt: Runtime = {
    config,
    log,
    orm: ormRef,
    db,
    databaseUrl: url,
    services,
    metrics,
    context: (l = log) => ({ db, log: l, services }),
    async close() {
      await metrics.stop();
      await services.charge.close();
      await leaseRef.release();
      await db.close();
      await ormRef.close(true);
      await stopDatabase();
      // Log lines are written asynchronously (log.ts): whatever is still buffered goes out now.
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    },
  };
  try {
    await recoverAbandonedWork(rt.context());
  } catch (err) {
    await rt.close();
    throw err;
  }
  return rt;
}

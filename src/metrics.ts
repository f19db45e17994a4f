import http from 'node:http';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { listen, stopNow } from './listen.js';

// Every metric of one order-up process, on a registry of its own (not prom-client's global one,
// so several apps in one process - the tests - do not clash). docs/operations.md explains each.
// No label ever holds an order ID, a token or an email: labels are fixed words, HTTP methods and
// statuses, and the spec's path templates.

export const CHARGE_KINDS = ['charge', 'refund'] as const;
export const CHARGE_OUTCOMES = ['succeeded', 'declined', 'failed', 'in_doubt'] as const;
export const FULFILLMENT_OUTCOMES = ['succeeded', 'failed', 'timeout'] as const;
export type ChargeKind = (typeof CHARGE_KINDS)[number];
export type ChargeCallOutcome = (typeof CHARGE_OUTCOMES)[number];
export type FulfillmentOutcome = (typeof FULFILLMENT_OUTCOMES)[number];

/** The `route` of a request that matched no operation of the spec (404, 405, CORS preflight, ...). */
export const UNMATCHED_ROUTE = 'unmatched';

/** How often the number of in-doubt payments is read from the database (never per scrape). */
export const IN_DOUBT_REFRESH_MS = 15_000;

// From 1 ms (a cached read) to 30 s (beyond any UPSTREAM_TIMEOUT_MS worth having).
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the charge client records (src/upstream/charge-service.ts). */
export interface ChargeMetrics {
  /** Where the gauge of waiting charges and refunds reads from, at each scrape. */
  watchQueue(waiting: () => number): void;
  /** One call sent (or tried) to the charge service, and what it came to. */
  called(kind: ChargeKind, outcome: ChargeCallOutcome): void;
  /** How long a call took, from sending it to its answer (or to giving up on it). */
  callSeconds(kind: ChargeKind, seconds: number): void;
  /** How long a call waited for the cross-process charge lock. */
  lockWaitSeconds(seconds: number): void;
}

/** What the fulfillment client records (src/upstream/fulfillment-service.ts). */
export interface FulfillmentMetrics {
  called(outcome: FulfillmentOutcome): void;
}

/** For a client made without metrics (a test of the client alone): records nothing. */
export const NO_CHARGE_METRICS: ChargeMetrics = { watchQueue() {}, called() {}, callSeconds() {}, lockWaitSeconds() {} };
export const NO_FULFILLMENT_METRICS: FulfillmentMetrics = { called() {} };

export class Metrics {
  readonly registry = new Registry();
  readonly charge: ChargeMetrics;
  readonly fulfillment: FulfillmentMetrics;
  private readonly requests: Histogram<'method' | 'route' | 'status'>;
  private readonly inDoubt: Gauge;
  private readonly inDoubtRefreshMs: number;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private queueWaiting: () => number = () => 0;
  private leaseHeld: () => boolean = () => false;

  constructor(opts: { inDoubtRefreshMs?: number } = {}) {
    this.inDoubtRefreshMs = opts.inDoubtRefreshMs ?? IN_DOUBT_REFRESH_MS;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    this.requests = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests of the API port by method, route (the spec path template, or "unmatched") and status, timed from when order-up starts on the request to the last byte of its answer.',
      labelNames: ['method', 'route', 'status'],
      buckets: SECONDS,
      registers,
    });

    const self = this;
    new Gauge({
      name: 'order_up_charge_queue_waiting',
      help: 'Charges and refunds of this process waiting for their turn at the charge service (the one in flight not counted).',
      registers,
      collect() {
        this.set(self.queueWaiting());
      },
    });
    const calls = new Counter({
      name: 'order_up_charge_calls_total',
      help: 'Calls to the charge service by kind (charge, refund) and outcome (succeeded, declined, failed, in_doubt).',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    const callSeconds = new Histogram({
      name: 'order_up_charge_call_duration_seconds',
      help: 'Duration of calls to the charge service, from sending to its answer (a timed-out call: to its late answer, or to giving up on it).',
      labelNames: ['kind'],
      buckets: SECONDS,
      registers,
    });
    const lockWait = new Histogram({
      name: 'order_up_charge_lock_wait_seconds',
      help: 'Time a charge or refund waited for the cross-process charge lock (one call in flight across all processes).',
      buckets: SECONDS,
      registers,
    });
    const fulfillmentCalls = new Counter({
      name: 'order_up_fulfillment_calls_total',
      help: 'Calls to the fulfillment service (one per line item) by outcome (succeeded, failed, timeout).',
      labelNames: ['outcome'],
      registers,
    });
    this.inDoubt = new Gauge({
      name: 'order_up_payments_in_doubt',
      help: `Payments in doubt in the whole database (not only this process's), waiting for staff; read every ${this.inDoubtRefreshMs / 1000} s.`,
      registers,
    });
    new Gauge({
      name: 'order_up_lease_held',
      help: 'Whether this process holds its database lease (1) or takes no new work until it has one again (0).',
      registers,
      collect() {
        this.set(self.leaseHeld() ? 1 : 0);
      },
    });

    // Every combination is exported from the start (at 0), so rate() and absent() work from the first scrape.
    const byOutcome = Object.fromEntries(
      CHARGE_KINDS.map((kind) => [kind, Object.fromEntries(CHARGE_OUTCOMES.map((outcome) => [outcome, calls.labels({ kind, outcome })]))]),
    ) as Record<ChargeKind, Record<ChargeCallOutcome, Counter.Internal>>;
    const secondsByKind = Object.fromEntries(CHARGE_KINDS.map((kind) => [kind, callSeconds.labels({ kind })])) as Record<
      ChargeKind,
      Histogram.Internal<'kind'>
    >;
    for (const kind of CHARGE_KINDS) {
      callSeconds.zero({ kind });
      for (const outcome of CHARGE_OUTCOMES) byOutcome[kind][outcome].inc(0);
    }
    const fulfillmentByOutcome = Object.fromEntries(
      FULFILLMENT_OUTCOMES.map((outcome) => [outcome, fulfillmentCalls.labels({ outcome })]),
    ) as Record<FulfillmentOutcome, Counter.Internal>;
    for (const outcome of FULFILLMENT_OUTCOMES) fulfillmentByOutcome[outcome].inc(0);

    this.charge = {
      watchQueue: (waiting) => {
        this.queueWaiting = waiting;
      },
      called: (kind, outcome) => byOutcome[kind][outcome].inc(),
      callSeconds: (kind, seconds) => secondsByKind[kind].observe(seconds),
      lockWaitSeconds: (seconds) => lockWait.observe(seconds),
    };
    this.fulfillment = { called: (outcome) => fulfillmentByOutcome[outcome].inc() };
  }

  /** The content type of `text()`: Prometheus text format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One answered request of the API port; `route` is the spec's path template or UNMATCHED_ROUTE, never a raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe({ method, route, status }, seconds);
  }

  /** Where the lease gauge reads from, at each scrape. */
  watchLease(lease: { readonly held: boolean }): void {
    this.leaseHeld = () => lease.held;
  }

  /**
   * Keeps the in-doubt gauge fresh while the process serves: a timer reads `count` now and every
   * `inDoubtRefreshMs` (15 s) - scrapes only read the cached value, so scraping never queries the
   * database. A failed read keeps the last value (it is logged at debug). Stopped by stop().
   */
  refreshInDoubt(count: () => Promise<number>, log: Logger): void {
    if (this.refreshTimer) return;
    const refresh = () => {
      if (this.refreshing) return;
      this.refreshing = count()
        .then((n) => this.inDoubt.set(n))
        .catch((err: unknown) => log.debug({ err }, 'could not count the payments in doubt for the metrics'))
        .finally(() => (this.refreshing = undefined));
    };
    refresh();
    this.refreshTimer = setInterval(refresh, this.inDoubtRefreshMs).unref();
  }

  /** Stops the in-doubt refresh (and waits for a read under way). */
  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    await this.refreshing;
  }
}

export interface MetricsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The metrics without a token, on a port of their own (METRICS_PORT), for a scraper inside the
 * private network: GET (or HEAD) /metrics only; everything else is 404, other methods 405.
 */
export async function startMetricsServer(metrics: Metrics, opts: { port: number; host: string; log: Logger }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        opts.log.error({ err }, 'could not collect the metrics');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('could not collect the metrics\n');
      },
    );
  });
  server.keepAliveTimeout = 5000;
  const { port, url } = await listen(server, opts.port, opts.host);
  return { url, port, stop: () => stopNow(server) };
}

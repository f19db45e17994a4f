// The primary of `order-up serve --workers N` (N > 1): it starts once what the workers share - the
// embedded database, the migrations, the simulated upstreams, the staff token, the port - then forks
// the workers (cli/cluster-worker.ts), replaces those that die, and drains them all on a signal.
import cluster, { type Worker } from 'node:cluster';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { PrimaryMessage, WorkerMessage } from './cluster-worker.js';
import { shutdownSignal } from './shared.js';
import { publishSimulatedUpstreams } from './simulated-upstreams.js';

export interface ClusterOptions {
  workers: number;
  port: number;
  host: string;
  simulateUpstreams: boolean;
  /** How long each simulated charge takes (`--simulate-latency`); the simulator's default when unset. */
  simulateLatencyMs?: number;
  migrate: boolean;
}

/** A worker that dies within this long of being ready (or before) counts as a quick death. */
const QUICK_DEATH_MS = 1000;
const MAX_RESTART_DELAY_MS = 15_000;

/**
 * Runs the cluster until SIGINT/SIGTERM and its drain. Resolves when everything it started is
 * stopped again; throws (after stopping what it started) when it cannot start, or when a worker
 * did not drain cleanly.
 */
export async function serveWithWorkers(cfg: Config, log: Logger, opts: ClusterOptions): Promise<void> {
  const { startSimulator } = await import('../src/simulate/upstreams.js');
  const { openDatabase, openRuntime } = await import('../src/runtime.js');

  let simulator: Awaited<ReturnType<typeof startSimulator>> | undefined;
  let database: Awaited<ReturnType<typeof openDatabase>> | undefined;
  const stopShared = async () => {
    await simulator?.stop().catch(() => undefined);
    await database?.stop().catch(() => undefined);
  };

  const env: Record<string, string> = {};
  try {
    // Every worker must listen on the same port: for `--port 0` one the primary picks. A port that
    // is taken fails here, at once, with the same message as a single process's.
    env.PORT = String(await portToShare(opts.host, opts.port));
    env.HOST = opts.host;
    if (opts.simulateUpstreams) {
      simulator = await startSimulator({ chargeLatencyMs: opts.simulateLatencyMs, log: log.child({ component: 'simulator' }) });
      cfg.chargeServiceUrl = simulator.url;
      cfg.fulfillmentServiceUrl = simulator.url;
      env.CHARGE_SERVICE_URL = simulator.url;
      env.FULFILLMENT_SERVICE_URL = simulator.url;
    }
    if (!cfg.databaseUrl) {
      database = await openDatabase(cfg, log);
      cfg.databaseUrl = database.url;
      env.DATABASE_URL = database.url;
    }
    if (opts.migrate) {
      // Once, here: the workers start with migrate: false. (Also recovers the work of dead processes.)
      const rt = await openRuntime(cfg, log, { migrate: true });
      await rt.close();
    }
    if (cfg.staffTokenGenerated) env.ORDER_UP_STAFF_TOKENS = cfg.staffTokens.join(',');
  } catch (err) {
    await stopShared();
    throw err;
  }

  const pool = new WorkerPool(opts.workers, env, log);
  // From the first fork on, a signal drains the workers instead of killing the primary; the
  // handlers stay installed so that a second Ctrl-C during the drain changes nothing.
  const stopSignal = shutdownSignal(log, {
    first: 'shutting down: every worker finishes its in-flight work',
    again: 'already shutting down: waiting for every worker to finish its in-flight and queued work',
  });

  const started = pool.start();
  started.catch(() => undefined); // a failure after a signal is reported by the drain
  let url: string | undefined;
  try {
    url = await Promise.race([started, stopSignal.then(() => undefined)]);
  } catch (err) {
    await pool.stop();
    await stopShared();
    throw err;
  }

  // Published only once we serve: a serve that failed to start never hides a running one's simulator.
  let unpublish = () => {};
  if (url) {
    unpublish = simulator ? publishSimulatedUpstreams(cfg.dataDir, simulator.url) : () => {};
    const lines = [`order-up listening on ${url}`, `docs: ${url}/docs`];
    if (simulator)
      lines.push(`simulated charge and fulfillment services: ${simulator.url} (card tokens starting with tok_decline are declined)`);
    if (cfg.staffTokenGenerated) lines.push(`staff token: ${cfg.staffTokens[0]}`);
    lines.push(`${opts.workers} workers`);
    process.stdout.write(lines.join('\n') + '\n');
    await stopSignal;
  }

  const unclean = await pool.stop();
  unpublish();
  await stopShared();
  if (unclean.length > 0)
    throw new Error(`not every worker shut down cleanly (${unclean.join('; ')}): work it had in flight may be in doubt`);
}

interface Slot {
  worker: Worker;
  readyAt: number | undefined;
  failure: string | undefined;
}

/** The workers: forks them, tells the primary when all listen, replaces the ones that die, drains them. */
class WorkerPool {
  private state: 'starting' | 'running' | 'stopping' = 'starting';
  private readonly slots = new Map<number, Slot>();
  private readonly restarts = new Set<NodeJS.Timeout>();
  private quickDeaths = 0;
  private url = '';
  private readonly unclean: string[] = [];
  private onStarted: { resolve(url: string): void; reject(err: Error): void } | undefined;
  private onDrained: (() => void) | undefined;

  constructor(
    private readonly size: number,
    private readonly env: Record<string, string>,
    private readonly log: Logger,
  ) {
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-worker.js', import.meta.url)), args: [] });
  }

  /** Forks every worker; resolves with the URL once all listen, rejects when one of them cannot start. */
  start(): Promise<string> {
    const started = new Promise<string>((resolve, reject) => (this.onStarted = { resolve, reject }));
    for (let i = 0; i < this.size; i += 1) this.fork();
    return started;
  }

  /** Tells every worker to drain and resolves, with what did not end cleanly, once all have exited. */
  stop(): Promise<string[]> {
    this.state = 'stopping';
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const drained = new Promise<void>((resolve) => (this.onDrained = resolve));
    for (const { worker } of this.slots.values()) this.tell(worker, { type: 'shutdown' });
    if (this.slots.size === 0) this.onDrained?.();
    return drained.then(() => this.unclean);
  }

  private fork(): void {
    const worker = cluster.fork(this.env);
    const slot: Slot = { worker, readyAt: undefined, failure: undefined };
    this.slots.set(worker.id, slot);
    worker.on('message', (m: WorkerMessage) => this.message(slot, m));
    worker.on('exit', (code, signal) => this.exited(slot, code, signal));
    worker.on('error', (err) => this.log.warn({ err, worker: worker.id }, 'could not talk to a worker'));
  }

  private tell(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }

  private message(slot: Slot, m: WorkerMessage): void {
    if (m?.type === 'failed') {
      slot.failure = m.message;
      return;
    }
    if (m?.type !== 'ready') return;
    slot.readyAt = Date.now();
    this.url ||= m.url;
    if (this.state === 'stopping') {
      // Told to stop while it was still loading (before it listened for messages): tell it again.
      this.tell(slot.worker, { type: 'shutdown' });
    } else if (this.state === 'starting' && [...this.slots.values()].every((s) => s.readyAt !== undefined)) {
      this.state = 'running';
      this.onStarted?.resolve(this.url);
    } else if (this.state === 'running') {
      this.log.info({ worker: slot.worker.id, workerPid: slot.worker.process.pid }, 'new worker listening');
    }
  }

  private exited(slot: Slot, code: number | null, signal: string | null): void {
    const { worker } = slot;
    this.slots.delete(worker.id);
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (this.state === 'stopping') {
      // One that never listened had no work to lose (it failed to start, or was told to stop first).
      if ((signal || code !== 0) && slot.readyAt !== undefined)
        this.unclean.push(`worker ${worker.id} (pid ${worker.process.pid}) ended with ${how}`);
      if (this.slots.size === 0) this.onDrained?.();
      return;
    }
    if (this.state === 'starting') {
      // One worker that cannot start (port taken, database unreachable) fails the whole start, as for a single process.
      this.onStarted?.reject(new Error(slot.failure ?? `a worker ended with ${how} before it listened`));
      return;
    }
    // Its in-flight requests are lost with it; its work is recovered like any dead process's: its
    // lease ends with its database session, and the new worker's start-up marks its started
    // payments in doubt and releases its orders.
    const quick = slot.readyAt === undefined || Date.now() - slot.readyAt < QUICK_DEATH_MS;
    this.quickDeaths = quick ? this.quickDeaths + 1 : 0;
    const delayMs = this.quickDeaths <= 1 ? 0 : Math.min(250 * 2 ** (this.quickDeaths - 2), MAX_RESTART_DELAY_MS);
    this.log.warn(
      { worker: worker.id, workerPid: worker.process.pid, code, signal, failure: slot.failure, restartInMs: delayMs },
      `worker ${worker.id} ended (${how}); starting a new one`,
    );
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      this.fork();
    }, delayMs);
    this.restarts.add(timer);
  }
}

/**
 * `port` (a free one for 0) once it was free on `host` just now. (Taken between this check and the
 * workers' listen, a worker fails to start, which fails the start too.)
 */
function portToShare(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ port, host, exclusive: true }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

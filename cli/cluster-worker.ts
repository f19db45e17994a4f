// One worker of `order-up serve --workers N`: forked by cli/cluster-primary.ts (node:cluster), never
// run by hand. It serves exactly like a single-process `serve` - its own runtime (lease, pool,
// charge queue) and HTTP server - on the port the cluster shares, and stops when the primary says so.
import cluster from 'node:cluster';
import { loadConfig } from '../src/config.js';
import { limitHeapGrowth } from '../src/heap.js';
import { createLogger } from '../src/log.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import { startServer, type RunningServer } from '../src/server.js';
import { safeMessage } from '../src/error-text.js';

/** What a worker tells the primary. */
export type WorkerMessage = { type: 'ready'; url: string } | { type: 'failed'; message: string };
/** What the primary tells a worker. */
export type PrimaryMessage = { type: 'shutdown' };

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

async function runWorker(): Promise<number> {
  const id = cluster.worker?.id;
  const log = createLogger().child({ worker: id });

  let stop!: (why: string) => void;
  const stopRequested = new Promise<string>((resolve) => (stop = resolve));
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type === 'shutdown') stop('told by the primary');
  });
  // A terminal's Ctrl-C reaches the whole process group: the primary gets it too and tells every
  // worker to drain, so a worker ignores SIGINT itself. SIGTERM sent to this worker alone drains
  // it (the primary then starts a new one); sent to every process at once, it is the same drain.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The configuration the primary resolved comes in the environment (DATABASE_URL, PORT, HOST,
  // upstream URLs, staff tokens); the primary applied the migrations.
  let rt: Runtime | undefined;
  let server: RunningServer;
  try {
    const cfg = loadConfig();
    limitHeapGrowth(cfg.heapGrowingPercent);
    rt = await openRuntime(cfg, log, { migrate: false });
    server = await startServer(rt, { port: cfg.port, host: cfg.host });
  } catch (err) {
    await rt?.close().catch(() => undefined);
    log.error({ err }, 'worker could not start');
    send({ type: 'failed', message: safeMessage(err) });
    return 1;
  }
  send({ type: 'ready', url: server.url });

  const why = await stopRequested;
  log.info({ why }, 'worker shutting down: finishing in-flight work');
  // Later signals and messages change nothing: the handlers above stay installed and `stop` is settled.
  try {
    await server.stop();
    await rt.close();
  } catch (err) {
    log.error({ err }, 'worker could not shut down cleanly');
    return 1;
  }
  return 0;
}

if (!cluster.isWorker) {
  process.stderr.write('order-up: this is a worker of "order-up serve --workers N"; run that instead\n');
  process.exitCode = 2;
} else {
  process.exitCode = await runWorker();
  // Letting go of the IPC channel lets the process end once its last handle closes.
  if (process.connected) cluster.worker?.disconnect();
}

import os from 'node:os';
import { Option, type Command } from 'commander';
import { limitHeapGrowth } from '../../src/heap.js';
import type { Logger } from '../../src/log.js';
import { publishSimulatedUpstreams } from '../simulated-upstreams.js';
import { EXIT_FAILED, EXIT_OK, UsageError, example, parseIntIn, shutdownSignal, type Cli } from '../shared.js';

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be 0..65535, got "${value}"`);
  return n;
}

function parseWorkers(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n > 64)
    throw new UsageError(`--workers must be 0..64 (0: one per core), got "${value}"`);
  return n;
}

// Imported when a command runs (not for --help or a usage error): see cli/shared.ts.
const lazy = {
  createLogger: async (): Promise<Logger> => (await import('../../src/log.js')).createLogger(),
  openRuntime: async () => (await import('../../src/runtime.js')).openRuntime,
  startServer: async () => (await import('../../src/server.js')).startServer,
  startSimulator: async () => (await import('../../src/simulate/upstreams.js')).startSimulator,
  serveWithWorkers: async () => (await import('../cluster-primary.js')).serveWithWorkers,
};

/** `serve`, `migrate` and `simulate-upstreams`: the commands that run order-up (and its stand-ins) rather than act on orders. */
export function registerServerCommands(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('Run the HTTP API (applies pending migrations first unless --no-migrate).')
    .addOption(new Option('--port <port>', 'port to listen on (env PORT, default 8888)').argParser(parsePort))
    .option('--host <host>', 'address to bind (env HOST, default 127.0.0.1)')
    .option('--simulate-upstreams', 'run built-in simulated charge and fulfillment services')
    .addOption(
      new Option('--simulate-latency <ms>', 'with --simulate-upstreams: how long each simulated charge takes (default 50)').argParser(
        parseIntIn('--simulate-latency', 0, 600_000),
      ),
    )
    .option('--no-migrate', 'do not apply pending migrations at start')
    .addOption(new Option('--workers <n>', 'processes serving the port (env WORKERS, default 1; 0: one per core)').argParser(parseWorkers))
    .addHelpText(
      'after',
      example(
        'ORDER_UP_STAFF_TOKENS=secret order-up serve --port 8888 --simulate-upstreams',
        'order-up serve --workers 0   # one worker per core',
        'order-up serve --simulate-upstreams --simulate-latency 2000',
      ),
    )
    .action(
      async (opts: {
        port?: number;
        host?: string;
        simulateUpstreams?: boolean;
        simulateLatency?: number;
        migrate: boolean;
        workers?: number;
      }) => {
        if (opts.simulateLatency !== undefined && !opts.simulateUpstreams)
          throw new UsageError('--simulate-latency goes with --simulate-upstreams');
        const cfg = cli.config();
        if (!opts.simulateUpstreams && (!cfg.chargeServiceUrl || !cfg.fulfillmentServiceUrl)) {
          throw new UsageError('serve needs CHARGE_SERVICE_URL and FULFILLMENT_SERVICE_URL (or --simulate-upstreams)');
        }
        const log = await lazy.createLogger();
        const requested = opts.workers ?? cfg.workers;
        const workers = requested === 0 ? os.availableParallelism() : requested;
        if (workers > 1) {
          // cli/cluster-primary.ts: the same start-up, banner and drain, over N worker processes.
          const serveWithWorkers = await lazy.serveWithWorkers();
          await serveWithWorkers(cfg, log.child({ role: 'primary' }), {
            workers,
            port: opts.port ?? cfg.port,
            host: opts.host ?? cfg.host,
            simulateUpstreams: opts.simulateUpstreams === true,
            simulateLatencyMs: opts.simulateLatency,
            migrate: opts.migrate,
          });
          cli.setExit(EXIT_OK);
          return;
        }
        // This process serves: its old generation kept small (src/heap.ts). Workers do the same themselves.
        limitHeapGrowth(cfg.heapGrowingPercent);
        const [openRuntime, startServer, startSimulator] = await Promise.all([
          lazy.openRuntime(),
          lazy.startServer(),
          lazy.startSimulator(),
        ]);
        // Whatever started before a failure (port taken, database unreachable) is stopped again, so
        // the process exits 1 instead of hanging on open connections.
        let simulator: Awaited<ReturnType<typeof startSimulator>> | undefined;
        let rt: Awaited<ReturnType<typeof openRuntime>> | undefined;
        let server: Awaited<ReturnType<typeof startServer>>;
        try {
          if (opts.simulateUpstreams) {
            simulator = await startSimulator({ chargeLatencyMs: opts.simulateLatency, log: log.child({ component: 'simulator' }) });
            cfg.chargeServiceUrl = simulator.url;
            cfg.fulfillmentServiceUrl = simulator.url;
          }
          rt = await openRuntime(cfg, log, { migrate: opts.migrate });
          server = await startServer(rt, { port: opts.port ?? cfg.port, host: opts.host ?? cfg.host });
        } catch (err) {
          await rt?.close().catch(() => undefined);
          await simulator?.stop().catch(() => undefined);
          throw err;
        }
        // Published only once we serve: a serve that failed to start never hides a running one's simulator.
        const unpublish = simulator ? publishSimulatedUpstreams(cfg.dataDir, simulator.url) : () => {};
        const lines = [`order-up listening on ${server.url}`, `docs: ${server.url}/docs`];
        if (cfg.dataDirNote && !cfg.databaseUrl) lines.push(`data: ${cfg.dataDir} (${cfg.dataDirNote})`);
        if (simulator)
          lines.push(
            `simulated charge and fulfillment services: ${simulator.url} (card tokens tok_decline*, tok_fail*, tok_hang*, tok_reset* and line items "fail*" misbehave: docs/frontend-guide.md)`,
          );
        if (cfg.staffTokenGenerated) lines.push(`staff token: ${cfg.staffTokens[0]}`);
        process.stdout.write(lines.join('\n') + '\n');
        await shutdownSignal(log, {
          first: 'shutting down: finishing in-flight work',
          again: 'already shutting down: waiting for in-flight and queued work to finish',
        });
        await server.stop();
        await rt.close();
        unpublish();
        await simulator?.stop();
        cli.setExit(EXIT_OK);
      },
    );

  program
    .command('migrate')
    .description('Apply pending database migrations and exit.')
    .addHelpText('after', example('DATABASE_URL=postgres://app:pw@db:5432/orders order-up migrate'))
    .action(async () => {
      const log = await lazy.createLogger();
      const openRuntime = await lazy.openRuntime();
      const rt = await openRuntime(cli.config(), log, { migrate: true });
      await rt.close();
      process.stdout.write('migrations applied\n');
      cli.setExit(EXIT_OK);
    });

  program
    .command('simulate-upstreams')
    .description('Run simulated charge and fulfillment services on one port for local work.')
    .addOption(new Option('--port <port>', 'port to listen on (default 8889)').argParser(parsePort))
    .option('--latency <ms>', 'how long each simulated charge takes', '50')
    .addHelpText(
      'after',
      example(
        'order-up simulate-upstreams --port 8889',
        'CHARGE_SERVICE_URL=http://127.0.0.1:8889 FULFILLMENT_SERVICE_URL=http://127.0.0.1:8889 order-up serve',
      ),
    )
    .action(async (opts: { port?: number; latency: string }) => {
      const log = await lazy.createLogger();
      const startSimulator = await lazy.startSimulator();
      const sim = await startSimulator({ port: opts.port ?? 8889, chargeLatencyMs: Number(opts.latency), log });
      process.stdout.write(`simulated charge service: ${sim.url}/charge\nsimulated fulfillment service: ${sim.url}/fulfill\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await sim.stop();
      cli.setExit(sim.overlaps() > 0 ? EXIT_FAILED : EXIT_OK);
    });
}

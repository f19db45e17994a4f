import { Command, CommanderError, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { openRuntime } from '../src/runtime.js';
import { startServer } from '../src/server.js';
import { startSimulator } from '../src/simulate/upstreams.js';

/** Exit statuses of CONTRACT.md §4. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be 0..65535, got "${value}"`);
  return n;
}

export function buildProgram(config: () => Config, setExit: (code: number) => void): Command {
  const program = new Command('order-up')
    .description('order-up: the order service. Staff commands work on the same database as the API.')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('Run the HTTP API (applies pending migrations first unless --no-migrate).')
    .addOption(new Option('--port <port>', 'port to listen on (env PORT, default 8888)').argParser(parsePort))
    .option('--host <host>', 'address to bind (env HOST, default 127.0.0.1)')
    .option('--simulate-upstreams', 'run built-in simulated charge and fulfillment services')
    .option('--no-migrate', 'do not apply pending migrations at start')
    .addHelpText('after', '\nExample:\n  $ ORDER_UP_STAFF_TOKENS=secret order-up serve --port 8888 --simulate-upstreams')
    .action(async (opts: { port?: number; host?: string; simulateUpstreams?: boolean; migrate: boolean }) => {
      const cfg = config();
      const log = createLogger();
      const simulator = opts.simulateUpstreams ? await startSimulator({ log: log.child({ component: 'simulator' }) }) : undefined;
      if (simulator) {
        cfg.chargeServiceUrl = simulator.url;
        cfg.fulfillmentServiceUrl = simulator.url;
      } else if (!cfg.chargeServiceUrl || !cfg.fulfillmentServiceUrl) {
        throw new UsageError('serve needs CHARGE_SERVICE_URL and FULFILLMENT_SERVICE_URL (or --simulate-upstreams)');
      }
      const rt = await openRuntime(cfg, log, { migrate: opts.migrate });
      const server = await startServer(rt, { port: opts.port ?? cfg.port, host: opts.host ?? cfg.host });
      const lines = [`order-up listening on ${server.url}`, `docs: ${server.url}/docs`];
      if (simulator) lines.push(`simulated charge and fulfillment services: ${simulator.url} (card tokens starting with tok_decline are declined)`);
      if (cfg.staffTokenGenerated) lines.push(`staff token: ${cfg.staffTokens[0]}`);
      process.stdout.write(lines.join('\n') + '\n');
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          log.info({ signal }, 'shutting down: finishing in-flight work');
          resolve();
        };
        process.once('SIGINT', shutdown);
        process.once('SIGTERM', shutdown);
      });
      await server.stop();
      await rt.close();
      await simulator?.stop();
      setExit(EXIT_OK);
    });

  program
    .command('migrate')
    .description('Apply pending database migrations and exit.')
    .addHelpText('after', '\nExample:\n  $ DATABASE_URL=postgres://app:pw@db:5432/orders order-up migrate')
    .action(async () => {
      const log = createLogger();
      const rt = await openRuntime(config(), log, { migrate: true });
      await rt.close();
      process.stdout.write('migrations applied\n');
      setExit(EXIT_OK);
    });

  program
    .command('simulate-upstreams')
    .description('Run simulated charge and fulfillment services on one port for local work.')
    .addOption(new Option('--port <port>', 'port to listen on (default 8889)').argParser(parsePort))
    .option('--latency <ms>', 'how long each simulated charge takes', '50')
    .addHelpText('after', '\nExample:\n  $ order-up simulate-upstreams --port 8889\n  $ CHARGE_SERVICE_URL=http://127.0.0.1:8889 FULFILLMENT_SERVICE_URL=http://127.0.0.1:8889 order-up serve')
    .action(async (opts: { port?: number; latency: string }) => {
      const log = createLogger();
      const sim = await startSimulator({ port: opts.port ?? 8889, chargeLatencyMs: Number(opts.latency), log });
      process.stdout.write(`simulated charge service: ${sim.url}/charge\nsimulated fulfillment service: ${sim.url}/fulfill\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await sim.stop();
      setExit(sim.overlaps() > 0 ? EXIT_FAILED : EXIT_OK);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  let exit = EXIT_OK;
  let cfg: Config | undefined;
  const program = buildProgram(
    () => (cfg ??= loadConfig()),
    (code) => {
      exit = code;
    },
  );
  try {
    await program.parseAsync(argv);
    return exit;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other commander complaint is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`order-up: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`order-up: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}

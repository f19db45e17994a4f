import { Command, CommanderError, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { openRuntime } from '../src/runtime.js';
import { startServer } from '../src/server.js';

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
      const rt = await openRuntime(cfg, log, { migrate: opts.migrate });
      const server = await startServer(rt, { port: opts.port ?? cfg.port, host: opts.host ?? cfg.host });
      const lines = [`order-up listening on ${server.url}`, `docs: ${server.url}/docs`];
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

import os from 'node:os';
import { Command, CommanderError } from 'commander';
import { STAFF_NAME } from '../src/staff-tokens.js';
import { loadConfig, ConfigError, type Config } from '../src/config.js';
import { registerBatchCommands } from './commands/batch.js';
import { registerOrderCommands } from './commands/orders.js';
import { registerPaymentCommands } from './commands/payments.js';
import { registerServerCommands } from './commands/server.js';
import { dashIdHint, refuseOptionsAfterSeparator } from './separator.js';
import { safeMessage } from '../src/error-text.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, example, type Cli } from './shared.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './shared.js';

/**
 * The `order-up` program (docs/staff-cli.md). Every staff command calls the same domain functions as
 * the HTTP handlers, on the same configuration (environment variables), never over HTTP.
 */
export function buildProgram(config: () => Config, setExit: (code: number) => void): Command {
  const program = new Command('order-up')
    .description('order-up: the order service. Staff commands work on the same database and services as the API.')
    .showHelpAfterError('(add --help for usage)')
    // Set before the subcommands are added: they share it. An ID that starts with "-" gets a hint.
    .configureOutput({ outputError: (str, write) => write(str + dashIdHint(program, str)) })
    .exitOverride()
    .addHelpText(
      'after',
      example(
        'order-up orders list --status charged',
        'order-up fulfill --all-charged',
        'order-up cancel 8Jq2x0fN3kQ --reason "Customer asked by phone"',
        'order-up payments in-doubt',
        'order-up <command> --help',
      ) + '\n\nConfiguration comes from the same environment variables as the server (DATABASE_URL, CHARGE_SERVICE_URL, ...).',
    );
  program.option('--as <name>', "who you are on the orders' timelines (env ORDER_UP_ACTOR, default your OS user)");
  const cli: Cli = { config, setExit, actor: () => actorName(program.opts<{ as?: string }>().as) };
  registerServerCommands(program, cli);
  registerOrderCommands(program, cli);
  registerBatchCommands(program, cli);
  registerPaymentCommands(program, cli);
  return program;
}

/** The CLI acts as `--as`, else ORDER_UP_ACTOR, else the OS user (made to fit the name rule). */
function actorName(flag: string | undefined): string {
  const given = flag ?? process.env.ORDER_UP_ACTOR;
  if (given !== undefined) {
    if (!STAFF_NAME.test(given))
      throw new UsageError(`--as (or ORDER_UP_ACTOR) must be a name of a-z, 0-9, ".", "_" and "-", got "${given.slice(0, 64)}"`);
    return given;
  }
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no user entry (a container with an arbitrary uid)
  }
  const fitted = user
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  return fitted || 'unknown';
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
    refuseOptionsAfterSeparator(program, argv.slice(2));
    await program.parseAsync(argv);
    return exit;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other commander complaint is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`order-up: ${err.message}\n(add --help for usage)\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`order-up: ${safeMessage(err)}\n`);
    return EXIT_FAILED;
  }
}

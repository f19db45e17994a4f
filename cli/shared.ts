import { InvalidArgumentError } from 'commander';
import type { Config } from '../src/config.js';
import { AppError } from '../src/domain/errors.js';
import { safeMessage } from '../src/error-text.js';
import type { Logger } from '../src/log.js';
import type { Runtime } from '../src/runtime.js';
import { findSimulatedUpstreams } from './simulated-upstreams.js';

// The heavy modules (ORM, database driver, HTTP server) are imported when a command runs, not
// when the program is assembled: `--help` and usage errors answer at once.

/** Exit statuses of the staff CLI (docs/staff-cli.md): 0 all succeeded, 1 any failed, 2 a usage error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in how the command was called: exit 2 with a short message. */
export class UsageError extends Error {}

/** What every command gets from the program: the (lazily loaded) configuration and the exit status. */
export interface Cli {
  config(): Config;
  setExit(code: number): void;
  /** The name this CLI run acts as (--as, ORDER_UP_ACTOR, the OS user). */
  actor(): string;
}

/** Staff commands log only warnings unless LOG_LEVEL says otherwise, so their output stays clean. */
export async function cliLogger(): Promise<Logger> {
  const { createLogger } = await import('../src/log.js');
  return createLogger({ level: process.env.LOG_LEVEL || 'warn' });
}

/**
 * Opens the same runtime as the server (same database, charge queue and cross-process charge
 * lock), without migrating: the server (or `order-up migrate`) owns the schema. Always closed,
 * which waits for any queued refund to finish.
 */
export async function withRuntime<T>(cli: Cli, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const config = cli.config();
  if (!config.chargeServiceUrl || !config.fulfillmentServiceUrl) {
    // Next to `make run` (serve --simulate-upstreams): use its simulated services.
    const simulated = findSimulatedUpstreams(config.dataDir);
    config.chargeServiceUrl ??= simulated;
    config.fulfillmentServiceUrl ??= simulated;
  }
  const { openRuntime } = await import('../src/runtime.js');
  const rt = await openRuntime(config, await cliLogger(), { migrate: false, actor: { kind: 'cli', name: cli.actor() } });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/**
 * Resolves on the first SIGINT or SIGTERM, logging `say.first`; later ones only log `say.again`.
 * The handlers stay installed: a second Ctrl-C during the drain must not kill the process with work
 * in flight (its charges would all become in doubt).
 */
export function shutdownSignal(log: Logger, say: { first: string; again: string }): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, say.again);
        return;
      }
      stopping = true;
      log.info({ signal }, say.first);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A failure as staff see it: the stable code and a human detail that never carries internals or secrets. */
export function describeError(e: unknown): { code: string; detail: string } {
  if (e instanceof AppError) return { code: e.code, detail: e.detail };
  if ((e as { code?: unknown }).code === '42P01') {
    // undefined_table: staff commands never migrate (the server or `order-up migrate` does).
    return { code: 'not_ready', detail: 'the database has no order-up tables yet: run "order-up migrate" (or start the server) first' };
  }
  return { code: 'internal_error', detail: safeMessage(e) };
}

/** What a bad option value means at a terminal, by the API parameter it fills (`/query/<name>`). */
const OPTION_PROBLEMS: Record<string, string> = {
  cursor: 'is not a cursor this service issued; use the nextCursor of a previous page (what "orders list" printed after --cursor)',
};

/**
 * The API's `invalid_request` about a parameter a CLI option filled (`/query/cursor`), in terminal
 * terms ("--cursor is not a cursor this service issued; ..."); undefined for any other error.
 */
export function optionProblem(e: unknown): string | undefined {
  if (!(e instanceof AppError) || e.code !== 'invalid_request' || !e.extra.errors?.length) return undefined;
  const lines: string[] = [];
  for (const { path, message } of e.extra.errors) {
    const name = /^\/query\/([A-Za-z]+)$/.exec(path)?.[1];
    if (!name) return undefined;
    lines.push(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${OPTION_PROBLEMS[name] ?? message}`);
  }
  return lines.join('\n');
}

/**
 * Prints a failed single operation (JSON on stdout with --json, a line on stderr otherwise) and
 * exits 1; a bad option value the API refused is a usage error (stderr, exit 2), like any other.
 */
function fail(cli: Cli, e: unknown, json: boolean | undefined): void {
  const usage = optionProblem(e);
  if (usage) {
    err(`order-up: ${usage}\n(add --help for usage)`);
    cli.setExit(EXIT_USAGE);
    return;
  }
  const { code, detail } = describeError(e);
  if (json) printJson({ error: { code, detail } });
  else err(`order-up: ${code}: ${detail}`);
  cli.setExit(EXIT_FAILED);
}

/**
 * The body of a staff command's action: `work` does the command and returns its exit status; a
 * failure is printed as `fail` prints it (with --json, as JSON). Usage errors found before the work
 * starts are thrown instead (main.ts: stderr, exit 2).
 */
export async function runCommand(cli: Cli, json: boolean | undefined, work: () => Promise<number>): Promise<void> {
  try {
    cli.setExit(await work());
  } catch (e) {
    fail(cli, e, json);
  }
}

export function parseIntIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

export function example(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => (l.startsWith('#') ? `  ${l}` : `  $ ${l}`)).join('\n')}`;
}

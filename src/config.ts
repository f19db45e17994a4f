import { randomBytes } from 'node:crypto';
import { parseStaffTokens, type StaffHolder } from './staff-tokens.js';
import { chooseDataDir } from './data-dir.js';

/** Everything order-up reads from its environment; a CLI flag of the same meaning overrides a field. */
export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  /** Set when the embedded database's data is not under `.order-up` in the project: where and why (src/data-dir.ts). */
  dataDirNote?: string;
  port: number;
  host: string;
  /** A second port serving only GET /metrics, without a token (bound to `host`); undefined: none. */
  metricsPort: number | undefined;
  chargeServiceUrl: string | undefined;
  fulfillmentServiceUrl: string | undefined;
  /** The entries of ORDER_UP_STAFF_TOKENS as given (or the one made for this run): for start-up banners and workers. */
  staffTokens: string[];
  /** Who may call staff endpoints: each entry's holder and its token's digest. */
  staffHolders: StaffHolder[];
  /** True when no ORDER_UP_STAFF_TOKENS was given and a random token was made for this run. */
  staffTokenGenerated: boolean;
  upstreamTimeoutMs: number;
  chargeQueueMax: number;
  leasePingMs: number;
  leaseSilentLimitMs: number;
  corsOrigins: string[];
  /** How long an Idempotency-Key's answer is kept (ORDER_UP_IDEMPOTENCY_TTL_HOURS). */
  idempotencyTtlMs: number;
  /** `serve` processes: 1 is a single process (no cluster), 0 one worker per core. */
  workers: number;
  /** How long a request waits for the database: a connection, and each statement (ORDER_UP_DB_TIMEOUT_MS). */
  dbTimeoutMs: number;
  /** Requests in progress in one process beyond which new ones are answered 503 overloaded (ORDER_UP_MAX_IN_FLIGHT). */
  maxInFlight: number;
  /** Writing a payment's known outcome while the database is away (src/domain/payments.ts). */
  outcomes: OutcomeRetry;
  /** The HTTP server's limits (src/server.ts). */
  http: HttpLimits;
  /** How far a serving process's old generation may grow past its live size, in % (src/heap.ts); 0: V8's own rule. */
  heapGrowingPercent: number;
}

export interface HttpLimits {
  /** A request's headers must have arrived this long after it started (ORDER_UP_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must have arrived this long after it started (ORDER_UP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (ORDER_UP_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number;
  /** Connections open at once per process; more are closed at once (ORDER_UP_MAX_CONNECTIONS). */
  maxConnections: number;
}

export interface OutcomeRetry {
  /** How long the caller waits for the outcome to be recorded before 502 payment_in_doubt (ORDER_UP_OUTCOME_WAIT_MS). */
  waitMs: number;
  /** How long the process keeps trying to record it before leaving the payment in doubt (ORDER_UP_OUTCOME_RETRY_MINUTES). */
  retryMs: number;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** A positive number of hours (fractions allowed, for short-lived test set-ups), in milliseconds. */
function hours(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback * 3_600_000;
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(value > 0) || value > 8760) {
    throw new ConfigError(`${name} must be a number of hours above 0 and at most 8760, got "${raw}"`);
  }
  return Math.round(value * 3_600_000);
}

function staffHolders(entries: string[]): StaffHolder[] {
  const parsed = parseStaffTokens(entries);
  if ('malformed' in parsed) {
    throw new ConfigError(
      `ORDER_UP_STAFF_TOKENS entry ${parsed.malformed} is malformed: use token, name:token or name:sha256:<64 hex digits>, with a name of a-z, 0-9, ".", "_" and "-" (at most 64, starting with a letter or digit)`,
    );
  }
  return parsed.holders;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function httpLimits(env: NodeJS.ProcessEnv): HttpLimits {
  const limits = {
    headersTimeoutMs: int(env, 'ORDER_UP_HEADERS_TIMEOUT_MS', 20000, 100, 600000),
    requestTimeoutMs: int(env, 'ORDER_UP_REQUEST_TIMEOUT_MS', 30000, 100, 3600000),
    keepAliveTimeoutMs: int(env, 'ORDER_UP_KEEP_ALIVE_TIMEOUT_MS', 65000, 1000, 3600000),
    maxConnections: int(env, 'ORDER_UP_MAX_CONNECTIONS', 1000, 1, 1000000),
  };
  // node refuses a headers timeout longer than the request's (the headers are part of the request).
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      `ORDER_UP_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}) must not exceed ORDER_UP_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const tokens = list(env.ORDER_UP_STAFF_TOKENS);
  const staffTokenGenerated = tokens.length === 0;
  const staffTokens = staffTokenGenerated ? [randomBytes(24).toString('base64url')] : tokens;
  const data = chooseDataDir({ explicit: env.ORDER_UP_DATA_DIR || undefined });
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: data.dir,
    dataDirNote: data.note,
    port: int(env, 'PORT', 8888, 0, 65535),
    host: env.HOST || '127.0.0.1',
    metricsPort: env.METRICS_PORT === undefined || env.METRICS_PORT === '' ? undefined : int(env, 'METRICS_PORT', 0, 0, 65535),
    chargeServiceUrl: env.CHARGE_SERVICE_URL || undefined,
    fulfillmentServiceUrl: env.FULFILLMENT_SERVICE_URL || undefined,
    staffTokens,
    staffHolders: staffHolders(staffTokens),
    staffTokenGenerated,
    upstreamTimeoutMs: int(env, 'UPSTREAM_TIMEOUT_MS', 10000, 1, 600000),
    chargeQueueMax: int(env, 'ORDER_UP_CHARGE_QUEUE_MAX', 1000, 0, 1000000),
    leasePingMs: int(env, 'ORDER_UP_LEASE_PING_MS', 5000, 50, 600000),
    leaseSilentLimitMs: int(env, 'ORDER_UP_LEASE_SILENT_LIMIT_MS', 60000, 1000, 3600000),
    corsOrigins: list(env.CORS_ORIGINS),
    idempotencyTtlMs: hours(env, 'ORDER_UP_IDEMPOTENCY_TTL_HOURS', 24),
    workers: int(env, 'WORKERS', 1, 0, 64),
    dbTimeoutMs: int(env, 'ORDER_UP_DB_TIMEOUT_MS', 5000, 100, 600000),
    maxInFlight: int(env, 'ORDER_UP_MAX_IN_FLIGHT', 256, 1, 1000000),
    outcomes: {
      waitMs: int(env, 'ORDER_UP_OUTCOME_WAIT_MS', 5000, 0, 600000),
      retryMs: int(env, 'ORDER_UP_OUTCOME_RETRY_MINUTES', 10, 1, 1440) * 60_000,
    },
    http: httpLimits(env),
    heapGrowingPercent: int(env, 'ORDER_UP_HEAP_GROWING_PERCENT', 50, 0, 1000),
  };
}

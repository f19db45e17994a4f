import { randomBytes } from 'node:crypto';
import { chooseDataDir } from './data-dir.js';

/** Everything order-up reads from its environment; a CLI flag of the same meaning overrides a field. */
export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  /** Set when the embedded database's data is not under `.order-up` in the project: where and why (src/data-dir.ts). */
  dataDirNote?: string;
  port: number;
  host: string;
  chargeServiceUrl: string | undefined;
  fulfillmentServiceUrl: string | undefined;
  staffTokens: string[];
  /** True when no ORDER_UP_STAFF_TOKENS was given and a random token was made for this run. */
  staffTokenGenerated: boolean;
  upstreamTimeoutMs: number;
  chargeQueueMax: number;
  leasePingMs: number;
  leaseSilentLimitMs: number;
  corsOrigins: string[];
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

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const tokens = list(env.ORDER_UP_STAFF_TOKENS);
  const staffTokenGenerated = tokens.length === 0;
  const data = chooseDataDir({ explicit: env.ORDER_UP_DATA_DIR || undefined });
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: data.dir,
    dataDirNote: data.note,
    port: int(env, 'PORT', 8888, 0, 65535),
    host: env.HOST || '127.0.0.1',
    chargeServiceUrl: env.CHARGE_SERVICE_URL || undefined,
    fulfillmentServiceUrl: env.FULFILLMENT_SERVICE_URL || undefined,
    staffTokens: staffTokenGenerated ? [randomBytes(24).toString('base64url')] : tokens,
    staffTokenGenerated,
    upstreamTimeoutMs: int(env, 'UPSTREAM_TIMEOUT_MS', 10000, 1, 600000),
    chargeQueueMax: int(env, 'ORDER_UP_CHARGE_QUEUE_MAX', 1000, 0, 1000000),
    leasePingMs: int(env, 'ORDER_UP_LEASE_PING_MS', 5000, 50, 600000),
    leaseSilentLimitMs: int(env, 'ORDER_UP_LEASE_SILENT_LIMIT_MS', 60000, 1000, 3600000),
    corsOrigins: list(env.CORS_ORIGINS),
  };
}

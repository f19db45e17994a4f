import { loadConfig, type Config } from '../../src/config.js';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/log.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { freshDatabaseUrl } from './test-db.js';
import { testSql, type TestSql } from './sql.js';

export const STAFF_TOKEN = 'test-staff-token';

export interface TestApp {
  url: string;
  rt: Runtime;
  server: RunningServer;
  /** Direct SQL on the app's database, to check (or tamper with) what is stored. */
  db: TestSql;
  /** fetch against the app; `staff: true` adds the staff bearer token. */
  call(method: string, path: string, opts?: { body?: unknown; staff?: boolean; headers?: Record<string, string> }): Promise<Reply>;
  stop(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * The real app, in-process, on a random port, against its own fresh PostgreSQL database (or the
 * one given, to run two instances on one database) and the given upstream URLs.
 */
export async function startTestApp(
  opts: {
    databaseUrl?: string;
    env?: Record<string, string>;
    chargeUrl?: string;
    fulfillmentUrl?: string;
    /** Where log lines go instead of stderr (to capture them), and at what level (default TEST_LOG_LEVEL or silent). */
    logDestination?: DestinationStream;
    logLevel?: string;
    /** How often the in-doubt gauge is read from the database (default 15 s, as in production). */
    inDoubtRefreshMs?: number;
  } = {},
): Promise<TestApp> {
  const databaseUrl = opts.databaseUrl ?? (await freshDatabaseUrl('app'));
  const config: Config = loadConfig({
    DATABASE_URL: databaseUrl,
    ORDER_UP_STAFF_TOKENS: STAFF_TOKEN,
    CHARGE_SERVICE_URL: opts.chargeUrl ?? 'http://127.0.0.1:9',
    FULFILLMENT_SERVICE_URL: opts.fulfillmentUrl ?? 'http://127.0.0.1:9',
    UPSTREAM_TIMEOUT_MS: '2000',
    ...opts.env,
  });
  const rt = await openRuntime(
    config,
    createLogger({ level: opts.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'silent', destination: opts.logDestination }),
    {
      migrate: true,
      inDoubtRefreshMs: opts.inDoubtRefreshMs,
    },
  );
  const server = await startServer(rt, { port: 0, host: '127.0.0.1' });
  const db = testSql(databaseUrl);
  return {
    url: server.url,
    rt,
    server,
    db,
    call: (method, path, o = {}) => call(server.url, method, path, o),
    async stop() {
      await server.stop();
      await db.close();
      await rt.close();
    },
  };
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; staff?: boolean; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  if (opts.staff) headers.authorization = `Bearer ${STAFF_TOKEN}`;
  const res = await fetch(base + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body };
}

/** A valid order body; override what a test cares about. */
export function newOrder(overrides: Record<string, unknown> = {}) {
  return {
    customerEmail: 'customer@example.com',
    lineItems: [
      { description: 'Tea', priceCents: 1250, quantity: 2 },
      { description: 'Mug', priceCents: 800, quantity: 1 },
    ],
    ...overrides,
  };
}

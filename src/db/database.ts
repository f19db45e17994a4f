import { createHash } from 'node:crypto';
import pg from 'pg';

/** What a repository runs its statements on: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<T>(sql: string, values?: unknown[]): Promise<T[]>;
}

// Statement text -> prepared statement name. The texts are fixed strings of the repositories (a few
// variants each), so this stays a handful of entries.
const statementNames = new Map<string, string>();

function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `order_up_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/**
 * Every statement is prepared once per connection, so PostgreSQL parses and plans it once, not on
 * every request; values always travel as bind parameters, so no card token or email ever becomes
 * part of a statement's text (or of an error quoting it).
 */
async function run<T>(client: pg.Pool | pg.PoolClient, sql: string, values: unknown[]): Promise<T[]> {
  const result = await client.query<T & pg.QueryResultRow>(prepared(sql, values));
  return result.rows;
}

export interface DatabaseOptions {
  /** Connections at most (default 10). */
  max?: number;
  application?: string;
  /**
   * How long a caller waits for the database (default 5000 ms): for a connection (from the pool or
   * a new one), and for each statement - PostgreSQL cancels a statement running longer
   * (`statement_timeout`), and one whose answer has not come TIMEOUT_MARGIN_MS after that (a frozen
   * or unreachable server) is given up by the client, its connection destroyed. Either way the caller
   * gets a DatabaseUnavailable, answered `503 not_ready` (src/http/problem.ts).
   */
  timeoutMs?: number;
}

/** Past statement_timeout, how long the client still waits for the server's own cancellation. */
export const TIMEOUT_MARGIN_MS = 1000;

/**
 * The database could not be reached, or did not answer in time: no connection could be had, or
 * the connection broke or timed out during a statement. Whether a statement sent before it broke
 * took effect is unknown. The original error is the `cause`.
 */
export class DatabaseUnavailable extends Error {
  constructor(message: string, cause: unknown) {
    super(`${message}: ${(cause as Error | null)?.message ?? String(cause)}`, { cause });
    this.name = 'DatabaseUnavailable';
  }
}

// SQLSTATEs that say the connection, not the statement, failed: class 08 (connection exception),
// 57P01-57P05 (admin/crash shutdown, cannot connect now, idle session timeout...), 57014 (our
// statement_timeout), 25P03 (idle in transaction timeout), 53300 (too many connections).
const CONNECTION_SQLSTATE = /^(08...|57P0[1-5]|57014|25P03|53300)$/;
// What node and node-postgres raise for a broken or timed-out connection.
const CONNECTION_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
const CONNECTION_MESSAGE =
  /^(Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|timeout expired)/;

/**
 * Whether an error means the database is unavailable (as opposed to a statement it refused): a
 * DatabaseUnavailable, or a raw connection-level error of node-postgres (from a connection of our
 * own outside the pool). The HTTP layer answers these 503 not_ready.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailable) return true;
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (CONNECTION_SQLSTATE.test(e.code) || CONNECTION_ERRNO.has(e.code))) return true;
  return typeof e.message === 'string' && CONNECTION_MESSAGE.test(e.message);
}

/** A statement's failure as the caller sees it: connection-level ones become DatabaseUnavailable. */
function classify(err: unknown): unknown {
  return !(err instanceof DatabaseUnavailable) && isDatabaseUnavailable(err)
    ? new DatabaseUnavailable('the database connection failed', err)
    : err;
}

/**
 * The data-access layer's own connection pool (node-postgres). MikroORM keeps the schema and the
 * migrations; the statements of the request path run here, without an ORM layer in between.
 */
export class Database implements Queryable {
  private readonly pool: pg.Pool;
  /** Statements sent so far (each a round trip), for tests and benchmarks that count them. */
  statements = 0;

  constructor(url: string, opts: DatabaseOptions = {}) {
    const timeoutMs = opts.timeoutMs ?? 5000;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      idleTimeoutMillis: 30_000,
      application_name: opts.application ?? 'order-up',
      // Waiting for a free connection, and opening a new one, are both bounded by this.
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs + TIMEOUT_MARGIN_MS,
      keepAlive: true,
    });
    // An idle connection that breaks (the database restarted) is dropped by the pool; without a
    // listener node would treat the error as uncaught. The next query opens a new connection.
    this.pool.on('error', () => undefined);
  }

  /**
   * Runs `use` on a connection of the pool. Any failure to get one (refused, timed out, the pool's
   * own wait) is DatabaseUnavailable. While it is ours, the connection's own 'error' event (its
   * socket died) is listened to - unheard, node would end the process - and a connection that
   * failed or timed out is destroyed afterwards, never reused; one whose statement was merely
   * refused (a unique violation) goes back to the pool with its prepared statements.
   */
  private async withConnection<T>(use: (client: pg.PoolClient, failed: (err: unknown) => unknown) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new DatabaseUnavailable('no database connection could be had', err);
    }
    let broken: DatabaseUnavailable | undefined;
    const failed = (err: unknown) => {
      const e = classify(err);
      if (e instanceof DatabaseUnavailable) broken ??= e;
      return e;
    };
    client.on('error', failed);
    try {
      return await use(client, failed);
    } catch (err) {
      throw failed(err);
    } finally {
      client.removeListener('error', failed);
      client.release(broken);
    }
  }

  query<T>(sql: string, values: unknown[] = []): Promise<T[]> {
    this.statements += 1;
    return this.withConnection((client) => run<T>(client, sql, values));
  }

  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    this.statements += 2; // begin and commit (or rollback)
    return this.withConnection(async (client, failed) => {
      await client.query('begin');
      try {
        const result = await work({
          query: <R>(sql: string, values: unknown[] = []) => {
            this.statements += 1;
            return run<R>(client, sql, values);
          },
        });
        await client.query('commit');
        return result;
      } catch (err) {
        // A broken connection cannot roll back (the server does when it notices): do not wait on
        // it. A connection whose rollback fails is in an unknown state: it is destroyed too.
        if (!(failed(err) instanceof DatabaseUnavailable)) {
          await client.query('rollback').catch((e: unknown) => failed(new DatabaseUnavailable('a rollback failed', e)));
        }
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** PostgreSQL's unique_violation on the named constraint. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string } | null;
  return e?.code === '23505' && e.constraint === constraint;
}

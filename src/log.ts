import { pino, type DestinationStream, type Logger } from 'pino';

// A SQL string literal ('...' with '' as the escaped quote).
const SQL_LITERAL = /'(?:[^']|'')*'/g;
// The values PostgreSQL quotes in an error's detail: `Key (card_token)=(tok_...) already exists.`
const KEY_VALUES = /\)=\((?:[^()]|\([^()]*\))*\)/g;
const SQL_TEXT = /\b(?:insert\s+into|update\s+\S+\s+set|select\s[\s\S]*\sfrom|delete\s+from|values\s*\()/i;
const DROPPED = new Set(['params', 'parameters', 'bindings', 'values']);

/**
 * Database errors carry the failed statement with its parameters inlined - MikroORM's
 * DriverException message is `insert into "payments" (...) values (..., 'tok_...', ...) - <reason>`
 * - and PostgreSQL's detail quotes key values. Strip the literals so no card token (or any other
 * stored value) reaches a log line through an error; the statement's shape stays for debugging.
 */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    let out = SQL_TEXT.test(value) ? value.replace(SQL_LITERAL, "'?'") : value;
    out = out.replace(KEY_VALUES, ')=(?)');
    return out;
  }
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!DROPPED.has(k)) out[k] = scrub(v, depth + 1);
  }
  return out;
}

const serializeError = (err: unknown) => scrub(pino.stdSerializers.err(err as Error));

/**
 * Structured logs on stderr (stdout stays free for CLI output). Card tokens and credentials are
 * redacted wherever they could appear, as a second line of defence: nothing logs request bodies,
 * and errors (which can quote SQL with its values) are scrubbed. `destination` replaces stderr
 * (tests capture the lines with it).
 */
export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'order-up',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      serializers: { err: serializeError, error: serializeError },
      redact: {
        paths: ['cardToken', '*.cardToken', '*.*.cardToken', 'authorization', '*.authorization', 'headers.authorization', 'password', '*.password'],
        censor: '[redacted]',
      },
    },
    opts.destination ?? bufferedStderr(),
  );
}

/**
 * stderr, written asynchronously and in batches: a request does not wait for its log line, and a
 * busy server makes one write per few kilobytes of lines rather than one per line (each write is a
 * system call, which costs as much as the rest of a simple request on a small VM). Whatever is
 * buffered goes out within LOG_FLUSH_MS, at shutdown (Runtime.close) and when the process exits.
 */
function bufferedStderr(): DestinationStream {
  const destination = pino.destination({ dest: 2, sync: false, minLength: 4096 });
  setInterval(() => {
    try {
      destination.flush();
    } catch {
      // Nothing to flush, or a flush already under way.
    }
  }, LOG_FLUSH_MS).unref();
  return destination;
}

const LOG_FLUSH_MS = 250;

export type { Logger };

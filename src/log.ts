import { pino, type DestinationStream, type Logger } from 'pino';
import { scrubbed } from './error-text.js';

// Errors can quote SQL with its values: see src/error-text.ts.
const serializeError = (err: unknown) => scrubbed(pino.stdSerializers.err(err as Error));

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
        paths: [
          'cardToken',
          '*.cardToken',
          '*.*.cardToken',
          'authorization',
          '*.authorization',
          'headers.authorization',
          'password',
          '*.password',
        ],
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

import { pino, type Logger } from 'pino';

/**
 * Structured logs on stderr (stdout stays free for CLI output). Card tokens and credentials are
 * redacted wherever they could appear, as a second line of defence: nothing logs request bodies.
 */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'order-up',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: {
        paths: ['cardToken', '*.cardToken', '*.*.cardToken', 'authorization', '*.authorization', 'headers.authorization', 'password', '*.password'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}

export type { Logger };

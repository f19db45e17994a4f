import { isDatabaseUnavailable } from '../db/database.js';
import type { components } from '../generated/order-up.js';

/**
 * Every stable error code order-up can answer with: the spec's ProblemCode, so that a code the spec
 * does not document fails `tsc`. The HTTP layer maps each to a status in one table (http/problem.ts).
 */
export type ErrorCode = components['schemas']['ProblemCode'];

/**
 * One validation failure (the spec's ValidationError): `path` is a JSON pointer into the request
 * body (`/lineItems/0/quantity`), or `/query/<name>`, `/path/<name>`.
 */
export type FieldError = components['schemas']['ValidationError'];

/**
 * An expected failure with a stable code. `detail` is for humans and must never carry secrets,
 * card tokens or internals. `upstreamStatus` distinguishes the two 502/504 flavours of
 * payment_in_doubt (a reset answers 502, a timeout 504 with code upstream_timeout).
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      status?: number;
      /** For a 405: the methods the resource supports. */ allow?: string;
    } = {},
  ) {
    super(`${code}: ${detail}`);
    this.name = 'AppError';
  }
}

export const invalid = (errors: FieldError[], detail = 'The request does not match the API contract.') =>
  new AppError('invalid_request', detail, { errors });

/**
 * 503 not_ready for a process that lost its database lease and is taking a new one (see
 * db/process-lease.ts): `what` says what was, or was not, done; retry in a moment.
 */
export const reconnecting = (what: string) =>
  new AppError('not_ready', `order-up lost its connection to the database and is reconnecting; ${what}`, { retryAfterSeconds: 1 });

/** Seconds a client waits before retrying when the database is unavailable. */
const DATABASE_RETRY_AFTER_SECONDS = 2;

/**
 * The AppError an error stands for: itself, or - for one that is not an AppError but has a known
 * meaning - the database unreachable, or too slow (a refused or timed-out connection, a connection
 * broken mid-statement, a statement past its timeout - see db/database.ts), which is `503
 * not_ready`, never a 500. For a write whose connection broke after it was sent, whether it took
 * effect is unknown (the spec's NotReady says what a client does about it). Undefined for any other
 * error.
 */
export function knownError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (isDatabaseUnavailable(err)) {
    return new AppError('not_ready', 'The database cannot be reached or did not answer in time. Try again in a moment.', {
      retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS,
    });
  }
  return undefined;
}

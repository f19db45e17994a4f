import { invalid } from './errors.js';

// The page cursors the API hands out: a version prefix, then base64url of the position of the last
// entry of a page. A cursor is opaque to clients; one this service did not issue is a 400 at
// /query/cursor, never a 500 from the database.

/** A cursor kind: what it encodes, and the checked value back from a cursor (or a 400 invalid_request). */
export interface CursorCodec<T> {
  encode(position: T): string;
  decode(cursor: string): T;
}

/** A UUID as text (hex digits in groups of 8-4-4-4-12), any version. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const MAX_BIGINT = 9223372036854775807n;
/** A timestamptz as PostgreSQL writes it as text: `2026-11-29 11:50:00.123456+00`. */
const PG_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?$/;

const notOurs = () =>
  invalid([{ path: '/query/cursor', message: 'is not a cursor this service issued; use nextCursor from a previous page' }]);

/** A codec for `prefix` whose positions are written as `text` and read back by `read` (undefined: not one of ours). */
function codec<T>(prefix: string, text: (position: T) => string, read: (text: string) => T | undefined): CursorCodec<T> {
  return {
    encode: (position) => prefix + Buffer.from(text(position), 'utf8').toString('base64url'),
    decode: (cursor) => {
      let position: T | undefined;
      try {
        position = cursor.startsWith(prefix) ? read(Buffer.from(cursor.slice(prefix.length), 'base64url').toString('utf8')) : undefined;
      } catch {
        position = undefined;
      }
      if (position === undefined) throw notOurs();
      return position;
    },
  };
}

/** A bigint sequence as its decimal text; 19 digits can exceed PostgreSQL's bigint (a 500 from the database), so that is bounded too. */
const sequence = (prefix: string) =>
  codec<string>(
    prefix,
    (seq) => seq,
    (text) => (/^[1-9][0-9]{0,18}$/.test(text) && BigInt(text) <= MAX_BIGINT ? text : undefined),
  );

/**
 * GET /orders: the insertion sequence of the last order of a page. Newest first: orders created
 * while someone pages sort before the cursor, so they never shift a page or appear twice.
 */
export const ORDER_CURSOR = sequence('o1.');

/**
 * GET /orders/{id}/events: the sequence of the last event of a page. Oldest first, so events added
 * while someone pages come after it and are seen exactly once.
 */
export const EVENT_CURSOR = sequence('e1.');

/** GET /payments: the last payment's [created_at as PostgreSQL wrote it, id], so no microsecond is lost. */
export const PAYMENT_CURSOR = codec<[string, string]>(
  'p1.',
  (last) => JSON.stringify(last),
  (text) => {
    const decoded = JSON.parse(text) as unknown;
    if (!Array.isArray(decoded) || decoded.length !== 2) return undefined;
    const [at, id] = decoded as unknown[];
    return typeof at === 'string' && PG_TIMESTAMP.test(at) && typeof id === 'string' && UUID.test(id) ? [at, id] : undefined;
  },
);

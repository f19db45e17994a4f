import type { components } from '../generated/order-up.js';
import type { DomainContext } from './context.js';
import { invalid } from './errors.js';
import { notFound } from './orders.js';

/** One entry of an order's timeline, as the API shows it (the spec's OrderEvent). */
export type OrderEventView = components['schemas']['OrderEvent'];

// The cursor is the sequence of the last event of a page; oldest first, so events added while
// someone pages come after it and are seen exactly once.
const CURSOR_PREFIX = 'e1.';
const MAX_BIGINT = 9223372036854775807n;

function decodeCursor(cursor: string): string {
  const seq = cursor.startsWith(CURSOR_PREFIX) ? Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8') : '';
  if (!/^[1-9][0-9]{0,18}$/.test(seq) || BigInt(seq) > MAX_BIGINT) {
    throw invalid([{ path: '/query/cursor', message: 'is not a cursor this service issued; use nextCursor from a previous page' }]);
  }
  return seq;
}

/** An order's timeline, oldest first, a page at a time; 404 for an unknown order. */
export async function orderEvents(
  ctx: DomainContext,
  id: string,
  input: { limit?: number; cursor?: string } = {},
): Promise<{ events: OrderEventView[]; nextCursor: string | null }> {
  const after = input.cursor ? decodeCursor(input.cursor) : undefined;
  if ((await ctx.db.orders.totalOf(id)) === undefined) throw notFound(id);
  const page = await ctx.db.events.page(id, after, input.limit ?? 100);
  const events = page.events.map((e) => ({ seq: Number(e.seq), at: e.at.toISOString(), type: e.type, actor: e.actor, requestId: e.requestId, data: e.data }));
  const last = page.events[page.events.length - 1];
  return { events, nextCursor: page.more && last ? CURSOR_PREFIX + Buffer.from(last.seq, 'utf8').toString('base64url') : null };
}

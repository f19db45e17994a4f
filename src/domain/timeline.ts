import type { components } from '../generated/order-up.js';
import type { DomainContext } from './context.js';
import { EVENT_CURSOR } from './cursors.js';
import { notFound } from './orders.js';

/** One entry of an order's timeline, as the API shows it (the spec's OrderEvent). */
export type OrderEventView = components['schemas']['OrderEvent'];

/** An order's timeline, oldest first, a page at a time; 404 for an unknown order. */
export async function orderEvents(
  ctx: DomainContext,
  id: string,
  input: { limit?: number; cursor?: string } = {},
): Promise<{ events: OrderEventView[]; nextCursor: string | null }> {
  const after = input.cursor ? EVENT_CURSOR.decode(input.cursor) : undefined;
  if ((await ctx.db.orders.totalOf(id)) === undefined) throw notFound(id);
  const page = await ctx.db.events.page(id, after, input.limit ?? 100);
  const events = page.events.map((e) => ({
    seq: Number(e.seq),
    at: e.at.toISOString(),
    type: e.type,
    actor: e.actor,
    requestId: e.requestId,
    data: e.data,
  }));
  const last = page.events[page.events.length - 1];
  return { events, nextCursor: page.more && last ? EVENT_CURSOR.encode(last.seq) : null };
}

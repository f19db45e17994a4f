import pMap from 'p-map';
import type { DomainContext } from './context.js';
import { AppError, reconnecting } from './errors.js';
import { claimOrder, finishClaim, holding } from './exclusive.js';
import { orderView, type OrderView } from './orders.js';
import { fulfillmentItem, whoOf } from './events.js';

// The fulfillment service has no one-at-a-time rule; a few items at once keep big orders quick.
const PARALLEL_ITEMS = 4;

/**
 * Fulfills a charged order: one PUT /fulfill per line item, and only when every item answered 200
 * does the order become `fulfilled`. The order is held for the whole time, so a cancel meanwhile
 * gets operation_in_progress and no order ends both refunded and fulfilled. On failure nothing
 * changes and the call can simply be repeated (the service is idempotent per order and item).
 */
export async function fulfillOrder(ctx: DomainContext, id: string): Promise<{ order: OrderView }> {
  const claim = await claimOrder(ctx, id, 'fulfill');
  if (claim.kind === 'already_done') return { order: orderView(claim.order) };
  const { order } = claim;
  return holding(ctx, claim, async () => {
    const items = order.lineItems;
    let leaseLost = false;
    const results = await pMap(
      items,
      async (item) => {
        // Without the lease the order was claimed under, another process may have recovered the
        // order (and, say, cancelled it): no further item is sent.
        if (!ctx.services.lease.holds(claim.owner)) {
          leaseLost = true;
          return { ok: false as const, reason: 'failed' as const, detail: 'not sent' };
        }
        return ctx.services.fulfillment.fulfill({ description: item.description, quantity: item.quantity, orderID: order.id });
      },
      { concurrency: PARALLEL_ITEMS },
    );
    // On the timeline and in the log after the fact, in line-item order, so a parallel run still
    // reads top to bottom. Items never sent (the lease was lost) are not on the timeline.
    const sent = items.flatMap((item, i) =>
      leaseLost && !results[i].ok && results[i].detail === 'not sent' ? [] : [fulfillmentItem(item, results[i])],
    );
    if (sent.length > 0) await ctx.db.events.append(order.id, whoOf(ctx), sent);
    results.forEach((result, i) => {
      const line = { orderId: id, item: i + 1, of: items.length, description: items[i].description };
      if (result.ok) ctx.log.info(line, 'line item fulfilled');
      else ctx.log.warn({ ...line, detail: result.detail }, 'line item not fulfilled');
    });
    const failed = items.flatMap((item, i) => {
      const result = results[i];
      return result.ok ? [] : [{ item, result }];
    });
    if (failed.length > 0) {
      const list = failed.map(({ item, result }) => `"${item.description}" (${result.ok ? '' : result.detail})`).join(', ');
      const timedOut = failed.some(({ result }) => !result.ok && result.reason === 'timeout');
      const detail = `${failed.length} of ${items.length} line items could not be fulfilled: ${list}. The order is still charged; try again.`;
      if (leaseLost) {
        throw reconnecting(`fulfilling stopped: ${detail}`);
      }
      throw new AppError(timedOut ? 'upstream_timeout' : 'fulfillment_failed', detail);
    }
    await finishClaim(ctx, claim, 'fulfilled', { outcome: (o) => ({ result: { order: orderView(o) } }) });
    return { order: orderView(order) };
  });
}

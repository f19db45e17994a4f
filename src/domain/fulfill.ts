import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { claimOrder, finishClaim, releaseOrder } from './exclusive.js';
import { orderView, type OrderView } from './orders.js';

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
  try {
    const items = order.lineItems;
    const failures: string[] = [];
    let timedOut = false;
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++];
        const result = await ctx.services.fulfillment.fulfill({ description: item.description, quantity: item.quantity, orderID: order.id });
        if (!result.ok) {
          failures.push(`"${item.description}" (${result.detail})`);
          timedOut ||= result.reason === 'timeout';
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_ITEMS, items.length) }, worker));
    if (failures.length > 0) {
      ctx.log.warn({ orderId: id, failed: failures.length, of: items.length }, 'fulfillment failed');
      const detail = `${failures.length} of ${items.length} line items could not be fulfilled: ${failures.join(', ')}. The order is still charged; try again.`;
      throw new AppError(timedOut ? 'upstream_timeout' : 'fulfillment_failed', detail);
    }
    await finishClaim(ctx, order, 'fulfilled');
    return { order: orderView(order) };
  } catch (err) {
    await releaseOrder(ctx, id).catch(() => undefined);
    throw err;
  }
}

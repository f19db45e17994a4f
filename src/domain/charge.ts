import type { DomainContext } from './context.js';
import { claimOrder, finishWithoutCall, releaseOrder } from './exclusive.js';
import { orderView, type OrderView } from './orders.js';
import { journaledCall, outcomeError } from './payments.js';

/**
 * Charges a pending order's total to the customer's card. Only one operation acts on an order at
 * a time; the call waits its turn in the charge queue; the order becomes `charged` exactly when the
 * charge service took the money. A zero total needs no call.
 */
export async function chargeOrder(ctx: DomainContext, id: string, cardToken: string): Promise<{ chargedCents: number; order: OrderView }> {
  const { order } = await claimOrder(ctx, id, 'charge');
  try {
    if (order.totalCents === 0) {
      await finishWithoutCall(ctx, order, 'charged');
      return { chargedCents: 0, order: orderView(order) };
    }
    const outcome = await journaledCall(ctx, order, 'charge', order.totalCents, cardToken, 'charged');
    if (outcome.kind !== 'succeeded') throw outcomeError('charge', outcome);
    return { chargedCents: order.totalCents, order: orderView(order) };
  } catch (err) {
    // The journal already released the order when it recorded an outcome; this covers the rest.
    await releaseOrder(ctx, id).catch(() => undefined);
    throw err;
  }
}

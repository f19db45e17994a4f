import { Payment } from '../db/entities.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { claimOrder, finishWithoutCall, releaseOrder } from './exclusive.js';
import { orderView, type OrderView } from './orders.js';
import { journaledCall, outcomeError } from './payments.js';

/**
 * Cancels an order. A pending order is simply cancelled; a charged one is refunded in full first,
 * with the card token stored when it was charged, and is cancelled only when the refund succeeded.
 * Cancelling a cancelled order answers the same again and refunds nothing.
 */
export async function cancelOrder(ctx: DomainContext, id: string, reason?: string): Promise<{ refundedCents: number; order: OrderView }> {
  const claimed = await claimOrder(ctx, id, 'cancel');
  const { order } = claimed;
  if (claimed.plan.kind === 'already_done') return { refundedCents: 0, order: orderView(order) };
  try {
    const cancelReason = reason ?? null;
    if (order.status === 'pending' || order.totalCents === 0) {
      await finishWithoutCall(ctx, order, 'cancelled', { cancelReason });
      return { refundedCents: 0, order: orderView(order) };
    }
    const charge = await ctx.em.fork().findOne(Payment, { order: id, kind: 'charge', state: 'succeeded' }, { orderBy: { createdAt: 'desc' } });
    if (!charge) throw new AppError('internal_error', `Order ${id} is charged but has no successful charge on record.`);
    order.cancelReason = cancelReason;
    const outcome = await journaledCall(ctx, order, 'refund', -order.totalCents, charge.cardToken, 'cancelled', { cancelReason });
    if (outcome.kind !== 'succeeded') throw outcomeError('refund', outcome);
    return { refundedCents: order.totalCents, order: orderView(order) };
  } catch (err) {
    await releaseOrder(ctx, id).catch(() => undefined);
    throw err;
  }
}

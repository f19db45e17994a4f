import { randomUUID } from 'node:crypto';
import type { OrderRecord } from '../db/records.js';
import { placeInQueue } from './charge.js';
import type { DomainContext } from './context.js';
import { claimOrder, finishClaim, holding } from './exclusive.js';
import { paymentOf } from './order-state.js';
import { orderView, type OrderView } from './orders.js';
import { journalRefund, outcomeError, sendAndSettle } from './payments.js';

/**
 * Cancels an order. A pending order is simply cancelled; a charged one is refunded in full first,
 * with the card token stored when it was charged, and is cancelled only when the refund succeeded.
 * Cancelling a cancelled order answers the same again and refunds nothing.
 */
export async function cancelOrder(ctx: DomainContext, id: string, reason?: string): Promise<{ refundedCents: number; order: OrderView }> {
  const claim = await claimOrder(ctx, id, 'cancel');
  if (claim.kind === 'already_done') return { refundedCents: 0, order: orderView(claim.order) };
  const { order } = claim;
  const cancelReason = reason ?? null;
  return holding(ctx, claim, async () => {
    if (paymentOf('cancel', order.status) !== 'refund' || order.totalCents === 0) {
      const result = (o: OrderRecord) => ({ refundedCents: 0, order: orderView(o) });
      await finishClaim(ctx, claim, 'cancelled', {
        cancelReason,
        eventData: { reason: cancelReason, refundedCents: 0 },
        outcome: (o) => ({ result: result(o) }),
      });
      return result(order);
    }
    const slot = placeInQueue(ctx);
    const paymentId = randomUUID();
    let refund;
    try {
      refund = await journalRefund(ctx, claim, paymentId, cancelReason);
    } catch (err) {
      slot.cancel();
      throw err;
    }
    claim.paymentId = paymentId;
    const result = (o: OrderRecord) => ({ refundedCents: o.totalCents, order: orderView(o) });
    const outcome = await sendAndSettle(ctx, claim, slot, refund, 'refund', 'cancelled', {
      cancelReason,
      eventData: { reason: cancelReason, refundedCents: order.totalCents },
      result,
    });
    if (outcome.kind !== 'succeeded') throw outcomeError('refund', outcome);
    return result(order);
  });
}

import { randomUUID } from 'node:crypto';
import type { DomainContext } from './context.js';
import { claimOrder, finishClaim, holding } from './exclusive.js';
import { orderView, type OrderView } from './orders.js';
import { outcomeError, settle } from './payments.js';

/**
 * Charges a pending order's total to the customer's card. The order is claimed and the charge
 * journaled in one step; the call waits its turn in the charge queue; the order becomes `charged`
 * exactly when the charge service took the money. A zero total needs no call.
 */
export async function chargeOrder(ctx: DomainContext, id: string, cardToken: string): Promise<{ chargedCents: number; order: OrderView }> {
  // A place in the queue first: when it is full we refuse before anything is written.
  const slot = ctx.services.charge.reserve();
  let claim;
  try {
    claim = await claimOrder(ctx, id, 'charge', { paymentId: randomUUID(), cardToken });
  } catch (err) {
    slot.cancel();
    throw err;
  }
  if (claim.kind !== 'claimed') {
    slot.cancel();
    throw new Error('a charge is never already done'); // plan() refuses instead
  }
  const held = claim;
  const { order } = held;
  return holding(ctx, held, async () => {
    if (!held.journaled) {
      slot.cancel();
      await finishClaim(ctx, held, 'charged');
      return { chargedCents: 0, order: orderView(order) };
    }
    const outcome = await slot.send({ cardToken, amountCents: order.totalCents });
    await settle(ctx, held, 'charge', outcome, 'charged');
    if (outcome.kind !== 'succeeded') throw outcomeError('charge', outcome);
    return { chargedCents: order.totalCents, order: orderView(order) };
  });
}

import { randomUUID } from 'node:crypto';
import type { OrderRecord } from '../db/records.js';
import type { NoPlace, QueueSlot } from '../upstream/charge-service.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { claimOrder, finishClaim, holding } from './exclusive.js';
import { findOrder, orderView, type OrderView } from './orders.js';
import { outcomeError, sendAndSettle } from './payments.js';

/**
 * Charges a pending order's total to the customer's card. The order is claimed and the charge
 * journaled in one step; the call waits its turn in the charge queue; the order becomes `charged`
 * exactly when the charge service took the money. A zero total needs no call.
 */
export async function chargeOrder(ctx: DomainContext, id: string, cardToken: string): Promise<{ chargedCents: number; order: OrderView }> {
  // A place in the queue first: when it is full we refuse before anything is written.
  const place = ctx.services.charge.reserve();
  const noPlace = place.refused && noPlaceError(place.refused);
  // A zero total needs no call, so neither a full queue nor a missing charge service stops it.
  if (noPlace && (await totalOf(ctx, id)) !== 0) throw noPlace;
  const slot = noPlace ? undefined : place;
  let claim;
  try {
    // Without a place nothing is journaled: the claim alone, for a zero total.
    claim = await claimOrder(ctx, id, 'charge', slot ? { paymentId: randomUUID(), cardToken } : undefined);
  } catch (err) {
    slot?.cancel();
    throw err;
  }
  if (claim.kind !== 'claimed') {
    slot?.cancel();
    throw new Error('a charge is never already done'); // plan() refuses instead
  }
  const held = claim;
  const { order } = held;
  return holding(ctx, held, async () => {
    if (!held.journaled) {
      slot?.cancel();
      // Totals never change, so this holds; were it not so, the order is released untouched.
      if (order.totalCents !== 0) throw noPlace ?? new Error(`order ${order.id} has a total but no journaled charge`);
      await finishClaim(ctx, held, 'charged', {
        eventData: { chargedCents: 0, note: 'zero total: no charge call' },
        outcome: (o) => ({ result: charged(o) }),
      });
      return charged(order);
    }
    const outcome = await sendAndSettle(ctx, held, slot!, { cardToken, amountCents: order.totalCents }, 'charge', 'charged', {
      result: charged,
    });
    if (outcome.kind !== 'succeeded') throw outcomeError('charge', outcome);
    return charged(order);
  });
}

/** What a charge answers: the amount charged (the whole total) and the order as it is now. */
const charged = (order: OrderRecord) => ({ chargedCents: order.totalCents, order: orderView(order) });

/** The order's total, or undefined when there is no such order (the caller's own error stands then). */
async function totalOf(ctx: DomainContext, id: string): Promise<number | undefined> {
  try {
    return (await findOrder(ctx, id)).totalCents;
  } catch {
    return undefined;
  }
}

/** What the caller hears when the charge queue has no place: 502 charge_failed, or 503 charge_queue_full with Retry-After. */
function noPlaceError(refused: NoPlace): AppError {
  if (refused.reason === 'not_configured')
    return new AppError('charge_failed', 'No charge service is configured (CHARGE_SERVICE_URL); nothing was sent.');
  return new AppError('charge_queue_full', 'Too many payments are waiting for the charge service; try again shortly.', {
    retryAfterSeconds: refused.retryAfterSeconds,
  });
}

/** A place in the charge queue (see ChargeService.reserve), or the error that says why there is none. */
export function placeInQueue(ctx: DomainContext): QueueSlot {
  const slot = ctx.services.charge.reserve();
  if (slot.refused) throw noPlaceError(slot.refused);
  return slot;
}

import type { NewEvent, Who } from '../db/events-repo.js';
import type { LineItemRecord, OrderRecord, PaymentKind } from '../db/records.js';
import type { ChargeOutcome } from '../upstream/charge-service.js';
import type { DomainContext } from './context.js';
import type { OrderStatus } from './order-state.js';

// The order timeline's vocabulary (documented in the spec's OrderEvent schema). Events are written
// by the statement that makes the change they describe; these functions only name what happened.
//
//   order.created                      the order exists (total, number of line items)
//   charge.started / refund.started    a call to the charge service is journaled (kind, amount)
//   <kind>.succeeded|declined|failed|in_doubt   its outcome (amount, what the service said)
//   <kind>.late_answer                 the service answered a call already in doubt (noted only)
//   order.charged                      a zero total moved to charged without a call
//   order.cancelled / order.fulfilled  the order entered that state (reason, amount refunded)
//   fulfillment.item                   one line item sent to the fulfillment service, and its outcome
//   payment.resolved                   staff recorded an in-doubt payment's outcome (which way)
//   operation.recovered                a dead process's claim on the order was let go (actor system)

/** Who acts in this context, as events record it. */
export const whoOf = (ctx: DomainContext): Who => ({ ...ctx.actor, requestId: ctx.requestId });

export const orderCreated = (order: OrderRecord): NewEvent => ({
  type: 'order.created',
  data: { totalCents: order.totalCents, lineItems: order.lineItems.length },
});

export function paymentOutcome(
  kind: PaymentKind,
  paymentId: string,
  amountCents: number,
  outcome: ChargeOutcome,
  described: string,
): NewEvent {
  const data: Record<string, unknown> = { paymentId, kind, amountCents, outcome: described };
  if (outcome.kind === 'declined') data.upstreamStatus = outcome.status;
  return { type: `${kind}.${outcome.kind}`, data };
}

/** Entering `to`: the event of the transition. A charge that succeeded already says the order is charged. */
export function entered(to: OrderStatus, data: Record<string, unknown> = {}): NewEvent {
  return { type: `order.${to}`, data };
}

export function fulfillmentItem(item: LineItemRecord, result: { ok: true } | { ok: false; reason: string; detail: string }): NewEvent {
  return {
    type: 'fulfillment.item',
    data: result.ok
      ? { description: item.description, quantity: item.quantity, outcome: 'fulfilled' }
      : {
          description: item.description,
          quantity: item.quantity,
          outcome: result.reason === 'timeout' ? 'timeout' : 'failed',
          detail: result.detail,
        },
  };
}

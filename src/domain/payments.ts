import { randomUUID } from 'node:crypto';
import { Order, Payment, type PaymentKind } from '../db/entities.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { enter, type OrderStatus } from './order-state.js';
import type { ChargeOutcome, QueueSlot } from '../upstream/charge-service.js';

/**
 * One call to the charge service, journaled: the payment row is committed as `started` before the
 * request leaves, and its outcome is committed together with the order's new status. Whatever
 * happens in between (crash, timeout, reset), the journal says what may have happened.
 */
export async function journaledCall(
  ctx: DomainContext,
  order: Order,
  kind: PaymentKind,
  amountCents: number,
  cardToken: string,
  onSuccess: OrderStatus,
  extraOnSuccess: Partial<Order> = {},
): Promise<ChargeOutcome> {
  // Reserve first: a full queue refuses before anything is written.
  const slot: QueueSlot = ctx.services.charge.reserve();
  const paymentId = randomUUID();
  try {
    const now = new Date();
    await ctx.em.fork().insert(Payment, {
      id: paymentId,
      order: order.id,
      kind,
      amountCents,
      cardToken,
      state: 'started',
      owner: ctx.services.processKey,
      createdAt: now,
      updatedAt: now,
    });
  } catch (err) {
    slot.cancel();
    throw err;
  }
  const outcome = await slot.send({ cardToken, amountCents });
  await recordOutcome(ctx, order, paymentId, outcome, onSuccess, extraOnSuccess);
  ctx.log.info({ orderId: order.id, paymentId, kind, amountCents, outcome: outcome.kind }, 'charge service call');
  return outcome;
}

const STATE_OF: Record<ChargeOutcome['kind'], Payment['state']> = {
  succeeded: 'succeeded',
  declined: 'failed',
  failed: 'failed',
  in_doubt: 'in_doubt',
};

function describe(outcome: ChargeOutcome): string {
  switch (outcome.kind) {
    case 'succeeded':
      return 'charge service answered 201';
    case 'declined':
      return `charge service answered ${outcome.status}`;
    case 'failed':
      return outcome.reason;
    case 'in_doubt':
      return outcome.reason === 'timeout' ? 'no answer before the timeout' : 'connection broke after the request was sent';
  }
}

/**
 * Commits the payment's outcome, the order's status (on success) and the release of the order in
 * one transaction. Retried a few times: the money already moved, so losing this write would leave
 * the payment `started` until this process exits (it then becomes in doubt, never guessed).
 */
async function recordOutcome(
  ctx: DomainContext,
  order: Order,
  paymentId: string,
  outcome: ChargeOutcome,
  onSuccess: OrderStatus,
  extraOnSuccess: Partial<Order>,
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await ctx.em.fork().transactional(async (em) => {
        const now = new Date();
        await em.nativeUpdate(Payment, { id: paymentId, state: 'started' }, { state: STATE_OF[outcome.kind], outcome: describe(outcome), updatedAt: now });
        const changes: Partial<Order> = { operation: null, operationOwner: null };
        if (outcome.kind === 'succeeded') {
          const moved = enter({ ...pickState(order) }, onSuccess, now);
          Object.assign(changes, moved, extraOnSuccess);
        }
        const updated = await em.nativeUpdate(Order, { id: order.id, operationOwner: ctx.services.processKey }, changes);
        if (updated !== 1) throw new Error(`order ${order.id} was no longer held by this process`);
        if (outcome.kind === 'succeeded') Object.assign(order, changes);
      });
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
      ctx.log.warn({ err, paymentId, attempt }, 'recording a payment outcome failed; retrying');
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

function pickState(order: Order) {
  return {
    status: order.status,
    updatedAt: order.updatedAt,
    chargedAt: order.chargedAt,
    fulfilledAt: order.fulfilledAt,
    cancelledAt: order.cancelledAt,
  };
}

/** Turns an unsuccessful outcome into the error the caller answers with. */
export function outcomeError(kind: PaymentKind, outcome: Exclude<ChargeOutcome, { kind: 'succeeded' }>): AppError {
  const what = kind === 'charge' ? 'charge' : 'refund';
  switch (outcome.kind) {
    case 'declined':
      if (kind === 'charge') return new AppError('payment_declined', 'The card was declined. Ask the customer for another card.');
      return new AppError('charge_failed', `The charge service refused the refund (status ${outcome.status}); the order is still charged.`);
    case 'failed':
      return new AppError('charge_failed', `The ${what} did not go through: ${outcome.reason}. Nothing was taken or refunded; it can be tried again.`);
    case 'in_doubt':
      if (outcome.reason === 'timeout') {
        return new AppError('upstream_timeout', `The charge service did not answer in time; the ${what} is in doubt until staff resolve it.`);
      }
      return new AppError('payment_in_doubt', `The connection to the charge service broke after the ${what} was sent; its outcome is unknown until staff resolve it.`, {
        status: 502,
      });
  }
}

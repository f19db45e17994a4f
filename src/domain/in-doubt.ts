import type { PaymentKind, PaymentRecord, PaymentState } from '../db/records.js';
import type { components } from '../generated/order-up.js';
import type { DomainContext } from './context.js';
import { PAYMENT_CURSOR, UUID } from './cursors.js';
import { AppError } from './errors.js';
import { enter, paymentStep } from './order-state.js';
import { whoOf } from './events.js';
import { getOrder, type OrderView } from './orders.js';

/**
 * The in-doubt procedure (docs/staff-cli.md; the spec's payment_in_doubt): a charge or refund whose outcome is unknown
 * (timeout, connection reset, a crash during the call) is recorded `in_doubt` and blocks every
 * further charge or cancel of its order. Staff ask the charge service what really happened and
 * record it here; only then does the order move on. Nothing here ever shows a card token.
 */

/** What staff see of a payment. Built field by field: the card token can never slip in. */
export interface PaymentView {
  paymentId: string;
  orderId: string;
  kind: PaymentKind;
  /** Exactly what the charge service was sent: positive for a charge, negative for a refund. */
  amountCents: number;
  /** When the call was journaled (just before it was sent). */
  startedAt: string;
  /** What is known about the call, e.g. "connection broke after the request was sent". */
  outcome: string | null;
}

export interface ResolvedPaymentView extends PaymentView {
  state: PaymentState;
  resolvedAt: string;
}

function paymentView(p: PaymentRecord): PaymentView {
  return {
    paymentId: p.id,
    orderId: p.orderId,
    kind: p.kind,
    amountCents: p.amountCents,
    startedAt: p.createdAt.toISOString(),
    outcome: p.outcome,
  };
}

/** Every payment whose outcome is unknown, oldest first. */
export async function listInDoubtPayments(ctx: DomainContext): Promise<PaymentView[]> {
  return (await ctx.db.payments.inDoubt()).map(paymentView);
}

/**
 * Records the outcome staff confirmed with the charge service for an in-doubt payment and moves
 * the order on, in one transaction holding row locks on the payment and the order:
 * charge succeeded -> `charged`; charge failed -> stays `pending`; refund succeeded ->
 * `cancelled`; refund failed -> stays `charged`. Resolving twice answers payment_not_in_doubt.
 */
export async function resolvePayment(
  ctx: DomainContext,
  paymentId: string,
  succeeded: boolean,
  note?: string,
): Promise<{ payment: ResolvedPaymentView; order: OrderView }> {
  if (!UUID.test(paymentId)) throw notFound(paymentId);
  const outcome = `resolved by staff: ${succeeded ? 'succeeded' : 'failed'}`;
  const resolved = await ctx.db.transaction(async (tx) => {
    // Payment first, then order. The journal's own outcome statement locks the other way round, but
    // it only touches a `started` payment of a claimed order, and this only an `in_doubt` payment of
    // an order nobody holds (checked below), so the two never wait on each other.
    const payment = await tx.payments.lock(paymentId);
    if (!payment) throw notFound(paymentId);
    const { orderId } = payment;
    if (payment.state !== 'in_doubt') {
      throw new AppError(
        'payment_not_in_doubt',
        `Payment ${paymentId} is ${payment.state}, not in doubt${payment.outcome ? ` (${payment.outcome})` : ''}; there is nothing to resolve.`,
      );
    }
    const order = await tx.orders.lock(orderId);
    if (!order) throw new AppError('internal_error', `Payment ${paymentId} belongs to an order that does not exist.`);
    if (order.operation !== null) {
      throw new AppError(
        'operation_in_progress',
        `Another ${order.operation} of order ${orderId} is under way; try again when it has finished.`,
      );
    }
    // The life cycle's step that made the payment (domain/order-state.ts): a success takes it, a failure leaves the order.
    const step = paymentStep(payment.kind);
    if (order.status !== step.from) {
      // Cannot happen while the journal holds: an in-doubt payment blocks every other operation.
      throw new AppError(
        step.from === 'pending' ? 'order_not_pending' : 'order_not_charged',
        `Order ${orderId} is ${order.status}, but an in-doubt ${payment.kind} needs it ${step.from}; nothing was changed.`,
      );
    }
    const now = new Date();
    const state: PaymentState = succeeded ? 'succeeded' : 'failed';
    await tx.payments.setOutcome(paymentId, state, outcome, now);
    const to = succeeded ? step.to : null;
    if (to) {
      enter(order, to, now);
      if (to === 'cancelled') order.cancelReason = payment.cancelReason;
      await tx.orders.setStatus(orderId, order);
    }
    // The resolution and the move it makes, on the timeline in the same transaction.
    await tx.events.append(orderId, whoOf(ctx), [
      {
        type: 'payment.resolved',
        data: {
          paymentId,
          kind: payment.kind,
          amountCents: payment.amountCents,
          outcome: state,
          orderStatus: order.status,
          ...(note ? { note } : {}),
        },
      },
    ]);
    ctx.log.info(
      { paymentId, orderId, kind: payment.kind, outcome: state, orderStatus: order.status },
      'in-doubt payment resolved by staff',
    );
    return { ...paymentView({ ...payment, outcome }), state, resolvedAt: now.toISOString() };
  });
  return { payment: resolved, order: await getOrder(ctx, resolved.orderId) };
}

function notFound(paymentId: string): AppError {
  const shown = paymentId.length > 80 ? `${paymentId.slice(0, 80)}...` : paymentId;
  return new AppError('payment_not_found', `There is no payment with the ID "${shown}".`);
}

/** A payment as the internal site sees it (the spec's Payment). Built field by field: no card token. */
export type PaymentItem = components['schemas']['Payment'];

const item = (p: PaymentRecord): PaymentItem => ({
  id: p.id,
  orderId: p.orderId,
  kind: p.kind,
  amountCents: p.amountCents,
  status: p.state,
  startedAt: p.createdAt.toISOString(),
  outcome: p.outcome,
});

/** Payments (of one status, or all), oldest first, a page at a time: what GET /payments shows. */
export async function listPayments(
  ctx: DomainContext,
  input: { status?: PaymentState; limit?: number; cursor?: string },
): Promise<{ payments: PaymentItem[]; nextCursor: string | null }> {
  const after = input.cursor ? PAYMENT_CURSOR.decode(input.cursor) : undefined;
  const page = await ctx.db.payments.page({ state: input.status, after, limit: input.limit ?? 100 });
  return {
    payments: page.payments.map(item),
    nextCursor: page.last ? PAYMENT_CURSOR.encode(page.last) : null,
  };
}

/** POST /payments/{id}/resolve: resolvePayment, answered with the payment as GET /payments shows it. */
export async function resolvePaymentItem(
  ctx: DomainContext,
  paymentId: string,
  outcome: 'succeeded' | 'failed',
  note?: string,
): Promise<{ payment: PaymentItem; order: OrderView }> {
  const { order } = await resolvePayment(ctx, paymentId, outcome === 'succeeded', note);
  const payment = await ctx.db.payments.find(paymentId);
  if (!payment) throw notFound(paymentId);
  return { payment: item(payment), order };
}

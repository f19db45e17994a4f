import type { PaymentOutcome } from '../db/claims-repo.js';
import { isDatabaseUnavailable } from '../db/database.js';
import { TIMED_OUT, within } from '../timeout.js';
import type { OrderRecord, PaymentKind, PaymentState, PaymentSummary } from '../db/records.js';
import type { ChargeOutcome, ChargeRequest, LateAnswer, QueueSlot } from '../upstream/charge-service.js';
import type { DomainContext } from './context.js';
import { AppError, reconnecting } from './errors.js';
import { keepRecording, RECOVERED_OUTCOME, tryFinishClaim, type FinishExtra, type HeldOrder } from './exclusive.js';
import { paymentOutcome, whoOf } from './events.js';
import { findOrder } from './orders.js';
import type { OrderStatus } from './order-state.js';

// The payments journal: a payment row is committed as `started` before its request leaves (in
// the claim for a charge, by journalRefund for a refund), and its outcome is committed together
// with the order's new status and release (settle). Whatever happens in between - a crash, a
// timeout, a reset - the journal says what may have happened, and nothing is guessed.

/**
 * Writes the `started` refund of a claimed, charged order: -total to the card of its successful
 * charge, with the cancel's reason (applied if staff later resolve an in-doubt refund). The caller never sends the card again; it never leaves the database except to the
 * charge service.
 */
export async function journalRefund(
  ctx: DomainContext,
  claim: HeldOrder,
  paymentId: string,
  cancelReason: string | null,
): Promise<{ cardToken: string; amountCents: number }> {
  const { order } = claim;
  // Only while this very claim still holds the order (its row locked meanwhile): should another
  // process have recovered the order, no refund is journaled, so none is sent.
  const refund = await ctx.db.payments.journalRefund({
    orderId: order.id,
    token: claim.token,
    paymentId,
    owner: claim.owner,
    cancelReason,
    who: whoOf(ctx),
  });
  if (!refund) {
    if (!ctx.services.lease.holds(claim.owner)) {
      throw reconnecting('no refund was sent. Try again in a moment.');
    }
    throw new Error(`order ${order.id} is no longer held by this cancel, or has no successful charge on record`);
  }
  return refund;
}

const STATE_OF: Record<ChargeOutcome['kind'], PaymentState> = {
  succeeded: 'succeeded',
  declined: 'failed',
  failed: 'failed',
  in_doubt: 'in_doubt',
};

/** The service refused, or the request never left: no money moved, whatever else happens. */
const movedNoMoney = (outcome: ChargeOutcome) => outcome.kind === 'failed' || outcome.kind === 'declined';

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

/** The pause before the next try to record an outcome: quick at first, then every 2 s. */
const retryPause = (attempt: number) => Math.min(100 * 2 ** (attempt - 1), 2000);

/**
 * Commits a call's outcome: the payment's state, the order's new status (only on success) and the
 * order's release, in one statement. The outcome is a fact (money moved or it did not), so while
 * the database is away (unreachable or not answering) the write is tried again - for up to `outcomes.retryMs` (ORDER_UP_OUTCOME_RETRY_MINUTES,
 * README "Limits") - and the order stays held by this claim meanwhile. When a retry finds the outcome
 * already recorded (the first commit went through but its answer was lost), that is success. Only
 * when it cannot be recorded in that time, or another process recovered the order meanwhile, is
 * the payment left in doubt (`holding` or `keepRecording` marks it so).
 */
async function settle(ctx: DomainContext, s: Settlement): Promise<void> {
  const { claim, kind, payment } = s;
  const giveUpAt = Date.now() + ctx.services.outcomes.retryMs;
  for (let attempt = 1; ; attempt += 1) {
    let recorded;
    try {
      recorded = await recordOnce(ctx, s);
    } catch (err) {
      // A statement the database refused will be refused again: three tries. The database away: until giveUpAt.
      if (Date.now() >= giveUpAt || (!isDatabaseUnavailable(err) && attempt >= 3)) {
        ctx.log.error(
          { err, paymentId: payment.id, kind, outcome: payment.outcome },
          'could not record a payment outcome in time; the payment is left in doubt',
        );
        throw couldNotRecord(kind);
      }
      // The first failure and then one in ten: a database away for minutes should not flood the log.
      if (attempt === 1 || attempt % 10 === 0)
        ctx.log.warn({ err, paymentId: payment.id, attempt }, 'recording a payment outcome failed; retrying');
      await new Promise((r) => setTimeout(r, retryPause(attempt)));
      continue;
    }
    if (!recorded) {
      ctx.log.error(
        { paymentId: payment.id, kind, outcome: payment.outcome },
        'the order was recovered by another process before its payment outcome was recorded; it is left in doubt',
      );
      throw couldNotRecord(kind);
    }
    break;
  }
  const level = s.outcome.kind === 'in_doubt' ? 'warn' : 'info';
  ctx.log[level]({ orderId: claim.order.id, paymentId: payment.id, kind, outcome: payment.outcome }, `${kind} ${payment.state}`);
}

/** A call's outcome on its way into the journal. */
interface Settlement {
  claim: HeldOrder;
  kind: PaymentKind;
  outcome: ChargeOutcome;
  payment: PaymentOutcome;
  /** The order's new status (on success), or null: it stays. */
  to: OrderStatus | null;
  finish: FinishExtra;
}

const couldNotRecord = (kind: PaymentKind) =>
  new AppError('payment_in_doubt', `order-up could not record the outcome of the ${kind}; it is in doubt until staff resolve it.`, {
    status: 502,
  });

/** One try at recording: true when it is recorded (now or by an earlier try), false when the order is no longer ours. */
async function recordOnce(ctx: DomainContext, s: Settlement): Promise<boolean> {
  const { claim, payment } = s;
  if (await tryFinishClaim(ctx, claim, s.to, payment, s.finish)) return true;
  if (await alreadyRecorded(ctx, payment)) {
    // By an earlier try whose answer was lost - and with it the Idempotency-Key's answer, if any.
    claim.held = false;
    if (s.to !== null) Object.assign(claim.order, await getOrderRecordState(ctx, claim.order.id));
    if (ctx.attempt && !ctx.attempt.recorded) ctx.attempt.recorded = ctx.attempt.answerFor(s.finish.outcome!(claim.order)) ?? undefined;
    return true;
  }
  // Another process recovered the order meanwhile and, not knowing, marked the payment in doubt.
  // When nothing moved (refused, or never sent) we do know: record that instead.
  if (claim.nothingMoved && (await correctRecovered(ctx, payment, s.outcome.kind))) {
    claim.held = false;
    return true;
  }
  return false;
}

/** A payment recovered as in doubt by another process, corrected to what this one knows after all. */
function correctRecovered(ctx: DomainContext, payment: PaymentOutcome, eventState: string): Promise<boolean> {
  return ctx.db.payments.correctInDoubt(payment.id, RECOVERED_OUTCOME, payment, eventState, whoOf(ctx));
}

async function alreadyRecorded(ctx: DomainContext, payment: PaymentOutcome): Promise<boolean> {
  const stored = await ctx.db.payments.find(payment.id);
  return stored?.state === payment.state && stored.outcome === payment.outcome;
}

/** The stored status and times of an order (after an outcome recorded by an earlier attempt). */
async function getOrderRecordState(ctx: DomainContext, id: string) {
  const o = await findOrder(ctx, id);
  return {
    status: o.status,
    updatedAt: o.updatedAt,
    chargedAt: o.chargedAt,
    fulfilledAt: o.fulfilledAt,
    cancelledAt: o.cancelledAt,
    cancelReason: o.cancelReason,
    payment: o.payment,
  };
}

/**
 * The order's payment summary once a charge or refund of `amountCents` (as sent: a refund is
 * negative) succeeded - the same rule the journal's summary follows (db/orders-repo.ts): no
 * payment of the order is open any more, so the latest success decides the status.
 */
function afterSuccess(before: PaymentSummary | null, kind: PaymentKind, amountCents: number): PaymentSummary {
  const charged = before?.chargedCents ?? 0;
  const refunded = before?.refundedCents ?? 0;
  return kind === 'charge'
    ? { status: 'charged', chargedCents: charged + amountCents, refundedCents: refunded }
    : { status: 'refunded', chargedCents: charged, refundedCents: refunded - amountCents };
}

/**
 * Sends a journaled charge or refund when its turn in the charge queue comes, then records its
 * outcome (settle). Once this process no longer holds the lease the payment was journaled under,
 * another process may have recovered it: then nothing is sent.
 */
export async function sendAndSettle(
  ctx: DomainContext,
  claim: HeldOrder,
  slot: QueueSlot,
  request: ChargeRequest,
  kind: PaymentKind,
  onSuccess: OrderStatus,
  extra: FinishExtra & { result: (order: OrderRecord) => unknown },
): Promise<ChargeOutcome> {
  let recorded!: () => void;
  const outcomeRecorded = new Promise<void>((resolve) => (recorded = resolve));
  const outcome = await slot.send(request, {
    mayCall: () => ctx.services.lease.holds(claim.owner),
    onLateAnswer: lateAnswerNote(ctx, claim.paymentId!, kind, outcomeRecorded),
  });
  claim.nothingMoved = movedNoMoney(outcome);
  const payment = { id: claim.paymentId!, state: STATE_OF[outcome.kind], outcome: describe(outcome) };
  const succeeded = outcome.kind === 'succeeded';
  const { result, ...finish } = extra;
  const recording = settle(ctx, {
    claim,
    kind,
    outcome,
    payment,
    to: succeeded ? onSuccess : null,
    finish: {
      ...finish,
      events: [paymentOutcome(kind, payment.id, request.amountCents, outcome, payment.outcome), ...(finish.events ?? [])],
      paymentSummary: succeeded ? afterSuccess(claim.order.payment, kind, request.amountCents) : undefined,
      outcome: (order) => (outcome.kind === 'succeeded' ? { result: result(order) } : { error: outcomeError(kind, outcome) }),
    },
  });
  recording.then(recorded, recorded);
  const settled = recording.then(
    () => true,
    () => true,
  );
  if ((await within(settled, ctx.services.outcomes.waitMs)) === TIMED_OUT) {
    // The caller has waited long enough; the write goes on, and the order stays held until it is.
    keepRecording(ctx, claim, recording);
    ctx.log.warn(
      { orderId: claim.order.id, paymentId: payment.id, kind, outcome: payment.outcome },
      'the database is away: answering before the payment outcome is recorded',
    );
    throw new AppError(
      'payment_in_doubt',
      `order-up cannot record the outcome of the ${kind} right now and keeps trying; until it has, the order cannot change. Look at the order again in a minute.`,
      { status: 502 },
    );
  }
  await recording;
  return outcome;
}

/**
 * What became of a call already recorded as in doubt by its timeout: the charge service's answer
 * after all, or that it never came (the extra wait ran out, or the connection broke). Once the
 * in-doubt outcome is recorded (`recorded`), it is added to the payment's outcome (shown by
 * `order-up payments in-doubt`) and logged, for the staff who resolve it. Nothing is decided on its
 * strength - the payment stays in doubt until staff confirm it with the charge service's records;
 * should staff already have resolved it the other way, that is logged as an error.
 */
function lateAnswerNote(
  ctx: DomainContext,
  paymentId: string,
  kind: PaymentKind,
  recorded: Promise<unknown>,
): (late: LateAnswer) => Promise<void> {
  return async (late) => {
    await recorded.catch(() => undefined);
    const { outcome } = late;
    const note = describeLate(late);
    if (late.answered) {
      ctx.log.warn(
        { paymentId, kind, lateOutcome: note },
        `the charge service answered the timed-out ${kind} late (${note}); it stays in doubt until staff resolve it`,
      );
    } else {
      ctx.log.warn(
        { paymentId, kind, lateOutcome: note },
        `the charge service gave no answer to the timed-out ${kind} (${note}); it stays in doubt until staff resolve it`,
      );
    }
    try {
      if (await ctx.db.payments.noteOnInDoubt(paymentId, `; later: ${note}`, note, whoOf(ctx))) return;
      const row = await ctx.db.payments.find(paymentId);
      const tookMoney = late.answered && outcome.kind === 'succeeded';
      const contradicts = (row?.state === 'failed' && tookMoney) || (row?.state === 'succeeded' && late.answered && movedNoMoney(outcome));
      if (contradicts) {
        ctx.log.error(
          { paymentId, kind, state: row.state, lateOutcome: note },
          `the ${kind} was resolved as ${row.state}, but the charge service answered late: ${note}; check it with the charge service`,
        );
      }
    } catch (err) {
      ctx.log.error({ err, paymentId }, 'could not note the late answer on the payment');
    }
  };
}

/** The words for what became of a timed-out call: "charge service answered 201", "still no answer after 20 s more", ... */
function describeLate(late: LateAnswer): string {
  if (late.answered) return describe(late.outcome);
  if (late.gaveUp) return `still no answer after ${seconds(late.afterMs)} more`;
  if (late.outcome.kind === 'in_doubt') {
    return late.outcome.reason === 'reset'
      ? 'the connection broke without an answer'
      : `still no answer after ${seconds(late.afterMs)} more`;
  }
  return describe(late.outcome);
}

/** 20000 -> "20 s", 400 -> "0.4 s". */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

/** Turns an unsuccessful outcome into the error the caller answers with. */
export function outcomeError(kind: PaymentKind, outcome: Exclude<ChargeOutcome, { kind: 'succeeded' }>): AppError {
  switch (outcome.kind) {
    case 'declined':
      if (kind === 'charge') return new AppError('payment_declined', 'The card was declined. Ask the customer for another card.');
      return new AppError('charge_failed', `The charge service refused the refund (status ${outcome.status}); the order is still charged.`);
    case 'failed':
      return new AppError(
        'charge_failed',
        `The ${kind} did not go through: ${outcome.reason}. Nothing was taken or refunded; it can be tried again.`,
      );
    case 'in_doubt':
      if (outcome.reason === 'timeout') {
        return new AppError(
          'upstream_timeout',
          `The charge service did not answer in time; the ${kind} is in doubt until staff resolve it.`,
        );
      }
      return new AppError(
        'payment_in_doubt',
        `The connection to the charge service broke after the ${kind} was sent; its outcome is unknown until staff resolve it.`,
        {
          status: 502,
        },
      );
  }
}

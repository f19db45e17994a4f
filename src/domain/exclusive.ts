import { randomUUID } from 'node:crypto';
import type { JournalEntry, PaymentOutcome } from '../db/claims-repo.js';
import type { NewEvent } from '../db/events-repo.js';
import type { OrderRecord, OrderWithClaim, PaymentSummary } from '../db/records.js';
import { entered, whoOf } from './events.js';
import type { DomainContext } from './context.js';
import { AppError, reconnecting } from './errors.js';
import type { Outcome } from './context.js';
import { answerWith } from './key-answer.js';
import { enter, plan, statusesThatProceed, type Operation, type OrderStatus } from './order-state.js';
import { notFound } from './orders.js';

/** What recovery writes on a `started` payment of a process that is gone. */
export const RECOVERED_OUTCOME = 'order-up stopped during the call';

/** An order this process holds for one operation, until `finishClaim` or `holding`'s clean-up lets go. */
export interface HeldOrder {
  order: OrderRecord;
  /** This claim's own token (orders.operation_token): finishing or releasing matches on it. */
  token: string;
  /** The process key the claim (and any payment journaled under it) was recorded with. */
  owner: number;
  held: boolean;
  /** The payment journaled for this operation, if any: on an unexpected failure it becomes in doubt. */
  paymentId?: string;
  /** Set once the call is known to have moved no money (refused, or never sent): then a failure to record it records `failed`, not in doubt. */
  nothingMoved?: boolean;
  /** Set when the caller was answered while the payment's outcome is still being recorded (keepRecording). */
  recording?: boolean;
}

export type Claim =
  | ({ kind: 'claimed'; journaled: boolean } & HeldOrder)
  /** The operation already happened (cancel of a cancelled order, fulfill of a fulfilled one). */
  | { kind: 'already_done'; order: OrderRecord };

/**
 * Makes this process the only one acting on an order. One statement sets the order's `operation`
 * if none is under way, the life cycle allows the operation from the current status and no
 * payment of the order is open (and, for a charge, journals the payment). When that fails we
 * look at the order to answer why: the life-cycle refusal (e.g. order_not_pending), 409
 * payment_in_doubt, or 409 operation_in_progress while another live operation holds the order - an
 * operation left behind by a process that is gone (or by this one, after a failure it could not
 * clean up) is recovered and the claim tried again.
 */
export async function claimOrder(ctx: DomainContext, id: string, operation: Operation, charge?: JournalEntry): Promise<Claim> {
  const from = statusesThatProceed(operation);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    // Without its lease the process could not defend new work against recovery by others.
    if (!ctx.services.lease.held) {
      throw reconnecting('nothing was done. Try again in a moment.');
    }
    const token = randomUUID();
    const owner = ctx.services.processKey;
    const claimed = await ctx.db.claims.claim({ id, operation, owner, token, from, charge, who: whoOf(ctx) });
    if (claimed) {
      return { kind: 'claimed', token, owner, held: true, paymentId: claimed.journaled ? charge?.paymentId : undefined, ...claimed };
    }
    const order = await ctx.db.orders.findWithClaim(id);
    if (!order) throw notFound(id);
    const p = plan(operation, order.status);
    if (p.kind === 'refuse') throw new AppError(p.code, p.detail);
    if (p.kind === 'already_done') return { kind: 'already_done', order };
    await refuseIfPaymentOpen(ctx, order, attempt === 4);
    if (order.operation !== null) await refuseUnlessAbandoned(ctx, order);
    // Otherwise the order changed between the two statements: try again.
  }
  throw new AppError('operation_in_progress', 'The order is changing right now; try again in a moment.');
}

/**
 * Runs an operation's work on a held order. The order is known to be worked on meanwhile (so this
 * process's own claim is never mistaken for a stuck one); if the work fails before it let go of
 * the order, the order is released and its started payment, if any, marked in doubt.
 */
export async function holding<T>(ctx: DomainContext, claim: HeldOrder, work: () => Promise<T>): Promise<T> {
  const active = ctx.services.activeClaims;
  active.add(claim.token);
  try {
    return await work();
  } catch (err) {
    if (claim.held && !claim.recording) await letGo(ctx, claim, err);
    throw err;
  } finally {
    if (!claim.recording) active.delete(claim.token);
  }
}

/**
 * The caller of a held order has been answered, but its payment's outcome is still being written
 * (`recording`, see domain/payments.ts): the order stays held - and known to be worked on - until
 * it is, and is let go with its payment in doubt should that fail. Shutdown waits for it (runtime.ts).
 */
export function keepRecording(ctx: DomainContext, claim: HeldOrder, recording: Promise<void>): void {
  claim.recording = true;
  const { pending } = ctx.services.outcomes;
  const done: Promise<void> = recording
    .catch((err: unknown) => (claim.held ? letGo(ctx, claim, err) : undefined))
    .finally(() => {
      ctx.services.activeClaims.delete(claim.token);
      pending.delete(done);
    });
  pending.add(done);
  // Its Idempotency-Key stays running until then, and then holds the outcome's answer.
  if (ctx.attempt) ctx.attempt.background = done;
}

/** Releases an order whose work failed: its started payment becomes in doubt (or failed, when nothing moved). */
async function letGo(ctx: DomainContext, claim: HeldOrder, err: unknown): Promise<void> {
  await ctx.db.claims
    .abandon({
      id: claim.order.id,
      token: claim.token,
      owner: claim.owner,
      state: claim.nothingMoved ? 'failed' : 'in_doubt',
      outcome: `order-up could not record the outcome (${err instanceof AppError ? err.code : 'internal error'})`,
      who: whoOf(ctx),
    })
    .catch((e: unknown) =>
      ctx.log.error({ err: e, orderId: claim.order.id }, 'could not release an order; it is recovered on its next use'),
    );
  claim.held = false;
}

/** What finishing a claim records besides the new status: the cancel's reason, and what the timeline says. */
export interface FinishExtra {
  cancelReason?: string | null;
  /** Events before the transition's own (a payment's outcome). */
  events?: NewEvent[];
  /** What the transition's event says (e.g. the amount refunded). */
  eventData?: Record<string, unknown>;
  /** The order's payment summary once this is recorded (after a successful payment). */
  paymentSummary?: PaymentSummary;
  /** What the operation comes to, given the order as it is then: its Idempotency-Key's answer is stored with it. */
  outcome?: (order: OrderRecord) => Outcome;
}

/**
 * Moves a held order to `to` (through the state machine) - or leaves its status as it is with
 * `to = null` - and releases it, recording the outcome of its payment, the events of both and the
 * request's Idempotency-Key answer in the same statement. Entering a state always writes its event
 * (`order.<status>`), except `charged` after a charge call, whose `charge.succeeded` event says it.
 * Returns false when nothing was written (the order or the started payment was no longer ours).
 */
export async function tryFinishClaim(
  ctx: DomainContext,
  claim: HeldOrder,
  to: OrderStatus | null,
  payment?: PaymentOutcome,
  extra: FinishExtra = {},
): Promise<boolean> {
  const { order } = claim;
  let change;
  const events = [...(extra.events ?? [])];
  if (to !== null) {
    const next = enter({ ...order }, to);
    change = { ...next, cancelReason: extra.cancelReason !== undefined ? extra.cancelReason : next.cancelReason };
    if (!(to === 'charged' && payment)) events.push(entered(to, extra.eventData));
  }
  const after = { ...change, ...(extra.paymentSummary ? { payment: extra.paymentSummary } : {}) };
  const outcome = extra.outcome;
  const keyed = outcome && answerWith(ctx, () => outcome({ ...order, ...after }));
  const done = await ctx.db.claims.finish({
    id: order.id,
    token: claim.token,
    change,
    payment,
    events,
    who: whoOf(ctx),
    answer: keyed?.answer,
  });
  if (done) {
    claim.held = false;
    Object.assign(order, after);
    keyed?.stored();
  }
  return done;
}

/** As tryFinishClaim, for work with no payment to record: losing the order on the way is an error. */
export async function finishClaim(ctx: DomainContext, claim: HeldOrder, to: OrderStatus, extra: FinishExtra = {}): Promise<void> {
  if (!(await tryFinishClaim(ctx, claim, to, undefined, extra))) {
    throw new Error(`order ${claim.order.id} was no longer held by this process`);
  }
}

async function refuseIfPaymentOpen(ctx: DomainContext, order: OrderWithClaim, lastTry: boolean): Promise<void> {
  const open = await ctx.db.payments.openOf(order.id);
  // A started payment is normally the call of the operation holding the order - perhaps one that
  // claimed it just after we read the order, so look again; only a started payment that stays on an
  // order nobody holds is as good as in doubt.
  const doubtful = open.find((p) => p.state === 'in_doubt') ?? (order.operation === null && lastTry ? open[0] : undefined);
  if (doubtful) {
    throw new AppError(
      'payment_in_doubt',
      `An earlier ${doubtful.kind} of this order (payment ${doubtful.id}) has an unknown outcome; staff must resolve it with the charge service first.`,
    );
  }
}

/**
 * An operation left on an order by a process that has since died - or by this process, when a
 * failure kept it from letting go - is recovered here; an operation under way is respected.
 */
async function refuseUnlessAbandoned(ctx: DomainContext, order: OrderWithClaim): Promise<void> {
  const owner = order.operationOwner;
  const ours = owner !== null && ctx.services.lease.isOwn(owner);
  if (ours && order.operationToken !== null && !ctx.services.activeClaims.has(order.operationToken)) {
    // Ours, but no work of ours holds it any more (a failure kept us from letting go). The token
    // makes sure only that very claim is released, never a newer one.
    await ctx.db.claims.abandon({
      id: order.id,
      token: order.operationToken,
      owner,
      state: 'in_doubt',
      outcome: 'order-up could not record the outcome',
      who: whoOf(ctx),
    });
    return;
  }
  if (owner !== null && !ours && !(await isOwnerAlive(ctx, owner))) {
    await recoverOwner(ctx, owner);
    return;
  }
  throw new AppError('operation_in_progress', `Another ${order.operation} of this order is under way; try again when it has finished.`);
}

/**
 * Everything a dead process left behind: `started` payments become `in_doubt` (the call may have
 * reached the charge service - never guess), and its claims on orders are released. Safe to run
 * from several processes at once: it only touches rows still owned by `owner`.
 */
export async function recoverOwner(ctx: DomainContext, owner: number): Promise<number> {
  const doubted = await ctx.db.recoverOwner(owner, RECOVERED_OUTCOME);
  if (doubted > 0) ctx.log.warn({ owner, payments: doubted }, 'payments left started by a stopped process are now in doubt');
  return doubted;
}

/** At start-up: recover the work of every process that is gone. Work of live processes is left alone. */
export async function recoverAbandonedWork(ctx: DomainContext): Promise<number> {
  let doubted = 0;
  for (const owner of await ctx.db.claims.owners()) {
    if (!(await isOwnerAlive(ctx, owner))) doubted += await recoverOwner(ctx, owner);
  }
  return doubted;
}

/** A process is alive while it holds its lease; this one is, by definition. */
export const isOwnerAlive = (ctx: DomainContext, owner: number) => owner === ctx.services.processKey || ctx.db.isOwnerAlive(owner);

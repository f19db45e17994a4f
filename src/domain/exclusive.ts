import { Order, Payment } from '../db/entities.js';
import { claimOrderRow, finishOrderRow, type JournalEntry, type OrderRecord } from '../db/order-sql.js';
import { isOwnerAlive } from '../db/process-lease.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { enter, plan, statusesThatProceed, type Operation, type OrderStatus } from './order-state.js';
import { findOrder } from './orders.js';

export type Claim =
  | { kind: 'claimed'; order: OrderRecord; journaled: boolean }
  /** The operation already happened (cancel of a cancelled order, fulfill of a fulfilled one). */
  | { kind: 'already_done'; order: Order };

/**
 * Makes this process the only one acting on an order. One statement sets the order's `operation`
 * if none is under way, the life cycle allows the operation from the current status and no
 * payment of the order is in doubt (and, for a charge, journals the payment). When that fails we
 * look at the order to answer why: the life-cycle refusal (e.g. order_not_pending), 409
 * payment_in_doubt, or 409 operation_in_progress while another live process holds the order - an
 * operation left by a process that is gone is recovered and the claim tried again.
 */
export async function claimOrder(ctx: DomainContext, id: string, operation: Operation, journal?: JournalEntry): Promise<Claim> {
  const from = statusesThatProceed(operation);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const claimed = await claimOrderRow(ctx.em, { id, operation, owner: ctx.services.processKey, from, journal });
    if (claimed) return { kind: 'claimed', ...claimed };

    const order = await findOrder(ctx, id);
    const p = plan(operation, order.status);
    if (p.kind === 'refuse') throw new AppError(p.code, p.detail);
    if (p.kind === 'already_done') return { kind: 'already_done', order };
    await refuseIfPaymentInDoubt(ctx, id);
    if (order.operation !== null) await refuseUnlessAbandoned(ctx, order);
    // Otherwise the order changed between the two statements: try again.
  }
  throw new AppError('operation_in_progress', 'The order is changing right now; try again in a moment.');
}

/**
 * Moves a claimed order to `to` (through the state machine) and releases it, optionally recording
 * the outcome of its payment in the same statement.
 */
export async function finishClaim(
  ctx: DomainContext,
  order: OrderRecord,
  to: OrderStatus | null,
  payment?: { id: string; state: Payment['state']; outcome: string },
  extra: { cancelReason?: string | null } = {},
): Promise<void> {
  let change;
  if (to !== null) {
    const next = enter({ ...order }, to);
    change = { ...next, cancelReason: extra.cancelReason !== undefined ? extra.cancelReason : next.cancelReason };
  }
  const done = await finishOrderRow(ctx.em, { id: order.id, owner: ctx.services.processKey, change, payment });
  if (!done) throw new Error(`order ${order.id} (or its started payment) was no longer held by this process`);
  if (change) Object.assign(order, change);
}

/** Lets go of the order without changing it (the operation failed or was refused upstream). */
export async function releaseOrder(ctx: DomainContext, id: string): Promise<void> {
  await finishOrderRow(ctx.em, { id, owner: ctx.services.processKey });
}

async function refuseIfPaymentInDoubt(ctx: DomainContext, orderId: string): Promise<void> {
  const doubtful = await ctx.em.fork().findOne(Payment, { order: orderId, state: 'in_doubt' }, { fields: ['id', 'kind'] });
  if (doubtful) {
    throw new AppError(
      'payment_in_doubt',
      `An earlier ${doubtful.kind} of this order (payment ${doubtful.id}) has an unknown outcome; staff must resolve it with the charge service first.`,
    );
  }
}

/**
 * An operation left on an order by a process that has since died is cleared here, and its started
 * payment marked in doubt; an operation of a live process is respected.
 */
async function refuseUnlessAbandoned(ctx: DomainContext, order: Order): Promise<void> {
  const owner = order.operationOwner;
  if (owner !== null && !(await isOwnerAlive(ctx.em, owner, ctx.services.processKey))) {
    await recoverOwner(ctx, owner);
    return;
  }
  throw new AppError('operation_in_progress', `Another ${order.operation} of this order is under way; try again when it has finished.`);
}

/**
 * Everything a dead process left behind: `started` payments become `in_doubt` (the call may have
 * reached the charge service - never guess), and its claims on orders are released. Safe to run
 * from several processes at once: each statement only touches rows still owned by `owner`.
 */
export async function recoverOwner(ctx: DomainContext, owner: number): Promise<number> {
  return ctx.em.fork().transactional(async (em) => {
    const now = new Date();
    const doubted = await em.nativeUpdate(
      Payment,
      { owner, state: 'started' },
      { state: 'in_doubt', outcome: 'order-up stopped during the call', updatedAt: now },
    );
    await em.nativeUpdate(Order, { operationOwner: owner }, { operation: null, operationOwner: null });
    if (doubted > 0) ctx.log.warn({ owner, payments: doubted }, 'payments left started by a stopped process are now in doubt');
    return doubted;
  });
}

/** At start-up: recover the work of every process that is gone. Work of live processes is left alone. */
export async function recoverAbandonedWork(ctx: DomainContext): Promise<number> {
  const em = ctx.em.fork();
  const rows = await em.getConnection().execute<{ owner: number }[]>(
    `select distinct owner from payments where state = 'started'
     union select distinct operation_owner from orders where operation_owner is not null`,
  );
  let doubted = 0;
  for (const { owner } of rows) {
    if (!(await isOwnerAlive(em, owner, ctx.services.processKey))) doubted += await recoverOwner(ctx, owner);
  }
  return doubted;
}

import { Order, Payment } from '../db/entities.js';
import { isOwnerAlive } from '../db/process-lease.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { enter, plan, type Operation, type Plan } from './order-state.js';
import { findOrder } from './orders.js';

export type Claimed = { order: Order; plan: Extract<Plan, { kind: 'proceed' }> };

/**
 * Makes this process the only one acting on an order: a conditional UPDATE sets the order's
 * `operation` only if no other is set and the status is still the one we planned from. The order
 * returned carries the status the operation starts from. `already_done` plans claim nothing.
 *
 * Refusals: the life-cycle answer (e.g. order_not_pending), 409 payment_in_doubt while a payment of
 * the order is in doubt, 409 operation_in_progress while another live process holds the order.
 */
export async function claimOrder(ctx: DomainContext, id: string, operation: Operation): Promise<Claimed | { order: Order; plan: { kind: 'already_done' } }> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const order = await findOrder(ctx, id);
    const p = plan(operation, order.status);
    if (p.kind === 'refuse') throw new AppError(p.code, p.detail);
    if (p.kind === 'already_done') return { order, plan: p };
    await refuseIfPaymentInDoubt(ctx, id);
    if (order.operation !== null) {
      await refuseUnlessAbandoned(ctx, order);
      continue;
    }
    const claimed = await ctx.em.fork().nativeUpdate(
      Order,
      { id, status: order.status, operation: null },
      { operation, operationOwner: ctx.services.processKey },
    );
    if (claimed === 1) {
      order.operation = operation;
      order.operationOwner = ctx.services.processKey;
      return { order, plan: p };
    }
    // Someone changed the order between our read and our update: look again.
  }
  throw new AppError('operation_in_progress', 'The order is changing right now; try again in a moment.');
}

/** A transition with no upstream call (zero totals, cancelling a pending order): status and release at once. */
export async function finishWithoutCall(ctx: DomainContext, order: Order, to: Order['status'], extra: Partial<Order> = {}): Promise<void> {
  enter(order, to);
  Object.assign(order, extra);
  await ctx.em.fork().nativeUpdate(
    Order,
    { id: order.id, operationOwner: ctx.services.processKey },
    {
      status: order.status,
      updatedAt: order.updatedAt,
      chargedAt: order.chargedAt,
      fulfilledAt: order.fulfilledAt,
      cancelledAt: order.cancelledAt,
      cancelReason: order.cancelReason,
      operation: null,
      operationOwner: null,
    },
  );
  order.operation = null;
  order.operationOwner = null;
}

/** Lets go of the order without changing it (the operation failed or was refused upstream). */
export async function releaseOrder(ctx: DomainContext, id: string): Promise<void> {
  await ctx.em.fork().nativeUpdate(Order, { id, operationOwner: ctx.services.processKey }, { operation: null, operationOwner: null });
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

import { ORDER_STATUSES, type OrderStatus, type OrderStatusFields, type PaymentKind } from '../db/records.js';
import type { ErrorCode } from './errors.js';

export { ORDER_STATUSES, type OrderStatus };

/**
 * The order life cycle, in one place:
 *
 *   pending --charge--> charged --fulfill--> fulfilled
 *      \                   \
 *       `----cancel---------`--cancel (refund first)--> cancelled
 *
 * `fulfilled` and `cancelled` are final. Domain functions ask `plan()` what an operation means for
 * an order's current status and change a status only through `enter()`; the in-doubt procedure
 * asks `paymentStep()` where a charge or refund was made from and leads to. All of it reads
 * LIFE_CYCLE below.
 */
export type Operation = 'charge' | 'cancel' | 'fulfill';

export type Plan =
  /** The order moves to `to`; on the way, when `payment` is set, the charge service is called (not for a zero total). */
  | { kind: 'proceed'; to: OrderStatus; payment?: PaymentKind }
  /** The operation already happened: answer success again, call nothing. */
  | { kind: 'already_done' }
  | { kind: 'refuse'; code: ErrorCode; detail: string };

const LIFE_CYCLE: Record<Operation, Record<OrderStatus, Plan>> = {
  charge: {
    pending: { kind: 'proceed', to: 'charged', payment: 'charge' },
    charged: { kind: 'refuse', code: 'order_not_pending', detail: 'The order has already been charged.' },
    fulfilled: { kind: 'refuse', code: 'order_not_pending', detail: 'The order has already been charged and fulfilled.' },
    cancelled: { kind: 'refuse', code: 'order_not_pending', detail: 'The order is cancelled and can no longer be charged.' },
  },
  cancel: {
    pending: { kind: 'proceed', to: 'cancelled' },
    charged: { kind: 'proceed', to: 'cancelled', payment: 'refund' },
    fulfilled: { kind: 'refuse', code: 'order_fulfilled', detail: 'The order has been fulfilled and can no longer be cancelled.' },
    cancelled: { kind: 'already_done' },
  },
  fulfill: {
    pending: { kind: 'refuse', code: 'order_not_charged', detail: 'The order has not been charged yet.' },
    charged: { kind: 'proceed', to: 'fulfilled' },
    fulfilled: { kind: 'already_done' },
    cancelled: { kind: 'refuse', code: 'order_cancelled', detail: 'The order is cancelled and cannot be fulfilled.' },
  },
};

const OPERATIONS = Object.keys(LIFE_CYCLE) as Operation[];

/** Every step that moves an order: from which status, by which operation, to where. */
const STEPS = OPERATIONS.flatMap((operation) =>
  ORDER_STATUSES.flatMap((from) => {
    const p = LIFE_CYCLE[operation][from];
    return p.kind === 'proceed' ? [{ operation, from, to: p.to, payment: p.payment }] : [];
  }),
);

export function plan(operation: Operation, status: OrderStatus): Plan {
  return LIFE_CYCLE[operation][status];
}

/** The statuses from which `operation` actually does something (the claim's precondition). */
export function statusesThatProceed(operation: Operation): OrderStatus[] {
  return STEPS.filter((step) => step.operation === operation).map((step) => step.from);
}

/** The call to the charge service `operation` makes on an order in `status`, if any (a zero total needs none). */
export function paymentOf(operation: Operation, status: OrderStatus): PaymentKind | undefined {
  return STEPS.find((step) => step.operation === operation && step.from === status)?.payment;
}

/** Where a payment of `kind` is made from, and where the order goes when it succeeds (when it fails, nowhere). */
export function paymentStep(kind: PaymentKind): { from: OrderStatus; to: OrderStatus } {
  const step = STEPS.find((s) => s.payment === kind);
  if (!step) throw new Error(`no step of the life cycle makes a ${kind}`);
  return { from: step.from, to: step.to };
}

/** Moves an order to `to`, stamping the matching time; refuses any move the life cycle does not allow. */
export function enter<T extends Omit<OrderStatusFields, 'cancelReason'>>(order: T, to: OrderStatus, now = new Date()): T {
  if (!STEPS.some((step) => step.from === order.status && step.to === to)) {
    throw new Error(`illegal transition ${order.status} -> ${to}`);
  }
  order.status = to;
  order.updatedAt = now;
  if (to === 'charged') order.chargedAt = now;
  if (to === 'fulfilled') order.fulfilledAt = now;
  if (to === 'cancelled') order.cancelledAt = now;
  return order;
}

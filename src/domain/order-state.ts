import { ORDER_STATUSES, type OrderStatus, type OrderStatusFields } from '../db/records.js';
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
 * an order's current status and change a status only through `enter()`.
 */
export type Operation = 'charge' | 'cancel' | 'fulfill';

export type Plan =
  | { kind: 'proceed'; to: OrderStatus }
  /** The operation already happened: answer success again, call nothing. */
  | { kind: 'already_done' }
  | { kind: 'refuse'; code: ErrorCode; detail: string };

const TABLE: Record<Operation, Record<OrderStatus, Plan>> = {
  charge: {
    pending: { kind: 'proceed', to: 'charged' },
    charged: { kind: 'refuse', code: 'order_not_pending', detail: 'The order has already been charged.' },
    fulfilled: { kind: 'refuse', code: 'order_not_pending', detail: 'The order has already been charged and fulfilled.' },
    cancelled: { kind: 'refuse', code: 'order_not_pending', detail: 'The order is cancelled and can no longer be charged.' },
  },
  cancel: {
    pending: { kind: 'proceed', to: 'cancelled' },
    charged: { kind: 'proceed', to: 'cancelled' },
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

export function plan(operation: Operation, status: OrderStatus): Plan {
  return TABLE[operation][status];
}

/** The statuses from which `operation` actually does something (the claim's precondition). */
export function statusesThatProceed(operation: Operation): OrderStatus[] {
  return ORDER_STATUSES.filter((status) => TABLE[operation][status].kind === 'proceed');
}

const ALLOWED: Record<OrderStatus, OrderStatus[]> = {
  pending: ['charged', 'cancelled'],
  charged: ['fulfilled', 'cancelled'],
  fulfilled: [],
  cancelled: [],
};

/** Moves an order to `to`, stamping the matching time; refuses any move the life cycle does not allow. */
export function enter<T extends Omit<OrderStatusFields, 'cancelReason'>>(order: T, to: OrderStatus, now = new Date()): T {
  if (!ALLOWED[order.status].includes(to)) {
    throw new Error(`illegal transition ${order.status} -> ${to}`);
  }
  order.status = to;
  order.updatedAt = now;
  if (to === 'charged') order.chargedAt = now;
  if (to === 'fulfilled') order.fulfilledAt = now;
  if (to === 'cancelled') order.cancelledAt = now;
  return order;
}

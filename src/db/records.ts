// The plain records the data-access layer takes and returns: no ORM identity, no lazy loading.
// The domain decides what they may become (domain/order-state.ts); this layer only stores them.

export const ORDER_STATUSES = ['pending', 'charged', 'fulfilled', 'cancelled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export type PaymentKind = 'charge' | 'refund';
export type PaymentState = 'started' | 'succeeded' | 'failed' | 'in_doubt';

export interface LineItemRecord {
  description: string;
  priceCents: number;
  quantity: number;
}

/** The times and reason that change with the order's status. */
export interface OrderStatusFields {
  status: OrderStatus;
  updatedAt: Date;
  chargedAt: Date | null;
  fulfilledAt: Date | null;
  cancelledAt: Date | null;
  cancelReason: string | null;
}

/** Where an order's money stands, from its payments journal (null: no payment was ever attempted). */
export interface PaymentSummary {
  status: 'none' | 'in_progress' | 'charged' | 'refunded' | 'in_doubt';
  chargedCents: number;
  refundedCents: number;
  inDoubtSince?: Date;
}

export interface OrderRecord extends OrderStatusFields {
  id: string;
  customerEmail: string;
  totalCents: number;
  lineItems: LineItemRecord[];
  createdAt: Date;
  payment: PaymentSummary | null;
}

/** An order with the claim under way on it, if any (see ClaimsRepository). */
export interface OrderWithClaim extends OrderRecord {
  operation: string | null;
  operationOwner: number | null;
  operationToken: string | null;
}

/** A row of the payments journal as staff may see it: never its card token. */
export interface PaymentRecord {
  id: string;
  orderId: string;
  kind: PaymentKind;
  /** Exactly what the charge service was sent: positive for a charge, negative for a refund. */
  amountCents: number;
  state: PaymentState;
  createdAt: Date;
  updatedAt: Date;
  outcome: string | null;
  cancelReason: string | null;
}

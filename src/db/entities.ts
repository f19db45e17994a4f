import { BigIntType, Collection, EntitySchema } from '@mikro-orm/core';
import type { OrderStatus, PaymentKind, PaymentState } from './records.js';

// Plain classes plus EntitySchema (no decorators): works the same under swc (jest), tsc and the
// MikroORM CLI. Money is always integer cents; totals can exceed 2^31, so bigint columns read as
// JS numbers (safe: the largest possible total is 100 * 1e8 * 1e4 = 1e14 < 2^53).

export class Order {
  id!: string;
  /** Insertion sequence: the stable key for keyset paging (newest first). */
  seq?: string;
  customerEmail!: string;
  status!: OrderStatus;
  totalCents!: number;
  lineItems = new Collection<LineItem>(this);
  createdAt!: Date;
  updatedAt!: Date;
  chargedAt: Date | null = null;
  fulfilledAt: Date | null = null;
  cancelledAt: Date | null = null;
  cancelReason: string | null = null;
  /** The operation (charge, cancel, fulfill) under way, claimed by one process at a time. */
  operation: string | null = null;
  /** Which process holds `operation`: a key whose session advisory lock that process holds while alive. */
  operationOwner: number | null = null;
  /** Identifies the one claim behind `operation`: finishing or releasing a claim matches on it. */
  operationToken: string | null = null;
}

export class LineItem {
  id?: number;
  order!: Order;
  position!: number;
  description!: string;
  priceCents!: number;
  quantity!: number;
}

export type { PaymentKind, PaymentState };

/** The payments journal: one row per call to the charge service, written before the call. */
export class Payment {
  id!: string;
  order!: Order;
  kind!: PaymentKind;
  /** Positive for a charge, negative for a refund: exactly what the charge service was sent. */
  amountCents!: number;
  /** Kept so a refund can reuse the card of the charge; never serialised into a response or a log. */
  cardToken!: string;
  state!: PaymentState;
  /** The process that made the call (see Order.operationOwner). */
  owner!: number;
  createdAt!: Date;
  updatedAt!: Date;
  /** What happened, for staff: an upstream status, "timeout", "reset", "resolved by staff". */
  outcome: string | null = null;
  /** For a refund: the reason of the cancel it belongs to, applied when the refund succeeds. */
  cancelReason: string | null = null;
}

const money = () => ({ type: new BigIntType('number'), columnType: 'bigint' as const });

export const OrderSchema = new EntitySchema<Order>({
  class: Order,
  tableName: 'orders',
  properties: {
    id: { type: 'string', primary: true, length: 64 },
    seq: { type: 'bigint', columnType: 'bigint', defaultRaw: `nextval('orders_seq_seq')`, unique: true, nullable: true },
    customerEmail: { type: 'string', length: 254 },
    status: { type: 'string', length: 16 },
    totalCents: money(),
    lineItems: { kind: '1:m', entity: () => LineItem, mappedBy: 'order', orderBy: { position: 'asc' } },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
    chargedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    fulfilledAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    cancelledAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    cancelReason: { type: 'string', columnType: 'text', nullable: true },
    operation: { type: 'string', length: 16, nullable: true },
    operationOwner: { type: 'integer', nullable: true },
    operationToken: { type: 'uuid', nullable: true },
  },
});

export const LineItemSchema = new EntitySchema<LineItem>({
  class: LineItem,
  tableName: 'line_items',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    order: { kind: 'm:1', entity: () => Order, deleteRule: 'cascade' },
    position: { type: 'integer' },
    description: { type: 'string', length: 200 },
    priceCents: money(),
    quantity: { type: 'integer' },
  },
});

export const PaymentSchema = new EntitySchema<Payment>({
  class: Payment,
  tableName: 'payments',
  properties: {
    id: { type: 'uuid', primary: true },
    order: { kind: 'm:1', entity: () => Order },
    kind: { type: 'string', length: 8 },
    amountCents: money(),
    cardToken: { type: 'string', columnType: 'text', hidden: true },
    state: { type: 'string', length: 16 },
    owner: { type: 'integer' },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
    outcome: { type: 'string', columnType: 'text', nullable: true },
    cancelReason: { type: 'string', columnType: 'text', nullable: true },
  },
});

/** A stored answer for an Idempotency-Key (see db/idempotency-repo.ts). */
export class IdempotencyKey {
  caller!: string;
  key!: string;
  fingerprint!: string;
  state!: 'running' | 'done';
  owner: number | null = null;
  status: number | null = null;
  body: string | null = null;
  location: string | null = null;
  createdAt!: Date;
  expiresAt!: Date;
}

export const IdempotencyKeySchema = new EntitySchema<IdempotencyKey>({
  class: IdempotencyKey,
  tableName: 'idempotency_keys',
  properties: {
    caller: { type: 'string', primary: true, length: 80 },
    key: { type: 'string', primary: true, length: 255 },
    fingerprint: { type: 'string', columnType: 'char(64)' },
    state: { type: 'string', length: 8 },
    owner: { type: 'integer', nullable: true },
    status: { type: 'integer', nullable: true },
    body: { type: 'string', columnType: 'text', nullable: true },
    location: { type: 'string', columnType: 'text', nullable: true },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    expiresAt: { type: 'Date', columnType: 'timestamptz' },
  },
});

export const entities = [OrderSchema, LineItemSchema, PaymentSchema, IdempotencyKeySchema];

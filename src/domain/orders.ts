import { randomBytes } from 'node:crypto';
import { OrderExists } from '../db/orders-repo.js';
import type { OrderRecord } from '../db/records.js';
import type { components } from '../generated/order-up.js';
import type { DomainContext } from './context.js';
import { ORDER_CURSOR } from './cursors.js';
import { answerWith, KeyHeld } from './key-answer.js';
import { AppError, invalid, type FieldError } from './errors.js';
import { orderCreated, whoOf } from './events.js';
import type { OrderStatus } from './order-state.js';

// The shapes of an order the API takes and shows are the spec's (src/generated/order-up.ts, from
// openapi/order-up.yaml); orderView() below builds the one from the stored record (db/records.ts).

/** The body of POST /orders (the spec's NewOrder). */
export type NewOrderInput = components['schemas']['NewOrder'];

/** What every response shows of an order (the spec's Order). Built field by field: the card token can never slip in. */
export type OrderView = components['schemas']['Order'];

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function orderView(order: OrderRecord): OrderView {
  return {
    id: order.id,
    customerEmail: order.customerEmail,
    lineItems: order.lineItems.map((li) => ({
      description: li.description,
      priceCents: li.priceCents,
      quantity: li.quantity,
    })),
    status: order.status,
    totalCents: order.totalCents,
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
    chargedAt: iso(order.chargedAt),
    fulfilledAt: iso(order.fulfilledAt),
    cancelledAt: iso(order.cancelledAt),
    cancelReason: order.cancelReason,
    payment: order.payment && {
      status: order.payment.status,
      chargedCents: order.payment.chargedCents,
      refundedCents: order.payment.refundedCents,
      ...(order.payment.inDoubtSince ? { inDoubtSince: order.payment.inDoubtSince.toISOString() } : {}),
    },
  };
}

/**
 * 128 random bits, URL-safe: an order's ID is the customer's only key to it, so it must not be
 * guessable. IDs that would start with "-" or "_" are drawn again, so they never look like a
 * command-line option to the staff CLI (or a shell).
 */
export function newOrderId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

/**
 * The rules the schema cannot express. The shape (types, lengths, ranges, unknown fields) was
 * already enforced from the OpenAPI document before we get here.
 */
function checkNewOrder(input: NewOrderInput): number {
  const seen = new Map<string, number>();
  const errors: FieldError[] = [];
  input.lineItems.forEach((item, i) => {
    const first = seen.get(item.description);
    if (first !== undefined) {
      errors.push({
        path: `/lineItems/${i}/description`,
        message: `repeats the description of line item ${first}; descriptions must be unique within an order`,
      });
    } else {
      seen.set(item.description, i);
    }
  });
  if (errors.length > 0) throw invalid(errors, 'Line item descriptions must be unique within an order.');
  const total = input.lineItems.reduce((sum, item) => sum + item.priceCents * item.quantity, 0);
  if (total < 0) {
    throw new AppError(
      'invalid_total',
      `The order's total would be ${total} cents; discounts may not exceed the price of the other items.`,
    );
  }
  return total;
}

export async function createOrder(ctx: DomainContext, input: NewOrderInput): Promise<OrderView> {
  const totalCents = checkNewOrder(input);
  const now = new Date();
  const order: OrderRecord = {
    id: input.id ?? newOrderId(),
    customerEmail: input.customerEmail,
    status: 'pending',
    totalCents,
    lineItems: input.lineItems.map(({ description, priceCents, quantity }) => ({ description, priceCents, quantity })),
    createdAt: now,
    updatedAt: now,
    chargedAt: null,
    fulfilledAt: null,
    cancelledAt: null,
    cancelReason: null,
    payment: null,
  };
  try {
    // With an Idempotency-Key, its answer goes into the same statement as the order (which takes the key, when not yet taken).
    const keyed = answerWith(ctx, () => ({ result: orderView(order) }));
    if (!(await ctx.db.orders.insert(order, whoOf(ctx), [orderCreated(order)], keyed?.answer))) throw new KeyHeld();
    keyed?.stored();
  } catch (err) {
    if (err instanceof OrderExists) throw new AppError('order_exists', `An order with the ID "${order.id}" already exists.`);
    throw err;
  }
  return orderView(order);
}

/** Loads an order with its line items in one round trip, or answers order_not_found. */
export async function findOrder(ctx: DomainContext, id: string): Promise<OrderRecord> {
  const order = await ctx.db.orders.find(id);
  if (!order) throw notFound(id);
  return order;
}

export const notFound = (id: string) => new AppError('order_not_found', `There is no order with the ID "${id}".`);

export async function getOrder(ctx: DomainContext, id: string): Promise<OrderView> {
  return orderView(await findOrder(ctx, id));
}

export interface ListOrdersInput {
  status?: OrderStatus;
  limit?: number;
  cursor?: string;
}

export async function listOrders(ctx: DomainContext, input: ListOrdersInput): Promise<{ orders: OrderView[]; nextCursor: string | null }> {
  const page = await ctx.db.orders.page({
    status: input.status,
    beforeSeq: input.cursor ? ORDER_CURSOR.decode(input.cursor) : undefined,
    limit: input.limit ?? 100,
  });
  return { orders: page.orders.map(orderView), nextCursor: page.lastSeq ? ORDER_CURSOR.encode(page.lastSeq) : null };
}

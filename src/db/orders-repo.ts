import { isUniqueViolation, type Queryable } from './database.js';
import { recordAnswerCte, takeAnswerCte, type KeyAnswer } from './idempotency-repo.js';
import { EVENT_COLUMNS, eventParams, eventsFrom, type NewEvent, type Who } from './events-repo.js';
import type { LineItemRecord, OrderRecord, PaymentSummary, OrderStatus, OrderStatusFields, OrderWithClaim } from './records.js';

// Orders and their line items. An order is read with its line items in one statement (a json_agg
// subquery), created with them in one statement, and listed a page at a time in one statement.

export const ORDER_COLUMNS = `o.id, o.customer_email, o.status, o.total_cents, o.created_at, o.updated_at,
  o.charged_at, o.fulfilled_at, o.cancelled_at, o.cancel_reason`;
export const LINE_ITEMS = `coalesce((
    select json_agg(json_build_object('description', l.description, 'priceCents', l.price_cents, 'quantity', l.quantity) order by l.position)
    from line_items l where l.order_id = o.id), '[]'::json) as line_items`;
// The payments journal summed up (see PaymentSummary): an in-doubt payment outranks one in flight,
// which outranks a refund, which outranks the charge it refunded.
const PAYMENT = `(select case when count(*) = 0 then null else json_build_object(
    'status', case when bool_or(p.state = 'in_doubt') then 'in_doubt' when bool_or(p.state = 'started') then 'in_progress'
      when bool_or(p.kind = 'refund' and p.state = 'succeeded') then 'refunded'
      when bool_or(p.kind = 'charge' and p.state = 'succeeded') then 'charged' else 'none' end,
    'chargedCents', coalesce(sum(p.amount_cents) filter (where p.kind = 'charge' and p.state = 'succeeded'), 0),
    'refundedCents', coalesce(-sum(p.amount_cents) filter (where p.kind = 'refund' and p.state = 'succeeded'), 0),
    'inDoubtSince', min(p.created_at) filter (where p.state = 'in_doubt')) end
    from payments p where p.order_id = o.id) as payment`;

/** An order's line items and payment summary, for a query over `orders o`. */
export const ORDER_DETAILS = `${LINE_ITEMS}, ${PAYMENT}`;

export interface OrderRow {
  id: string;
  customer_email: string;
  status: OrderStatus;
  total_cents: string | number;
  created_at: Date;
  updated_at: Date;
  charged_at: Date | null;
  fulfilled_at: Date | null;
  cancelled_at: Date | null;
  cancel_reason: string | null;
  line_items: LineItemRecord[];
  payment: {
    status: PaymentSummary['status'];
    chargedCents: number | string;
    refundedCents: number | string;
    inDoubtSince: string | null;
  } | null;
}

export function toOrder(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    customerEmail: row.customer_email,
    status: row.status,
    // bigint columns arrive as text; every amount fits a double exactly (at most 1e14 cents).
    totalCents: Number(row.total_cents),
    lineItems: row.line_items,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    chargedAt: row.charged_at,
    fulfilledAt: row.fulfilled_at,
    cancelledAt: row.cancelled_at,
    cancelReason: row.cancel_reason,
    payment: row.payment && {
      status: row.payment.status,
      chargedCents: Number(row.payment.chargedCents),
      refundedCents: Number(row.payment.refundedCents),
      ...(row.payment.inDoubtSince ? { inDoubtSince: new Date(row.payment.inDoubtSince) } : {}),
    },
  };
}

export class OrderExists extends Error {}

export interface OrderPage {
  orders: OrderRecord[];
  /** The sequence of the page's last order when another page follows. */
  lastSeq: string | null;
}

export class OrdersRepository {
  constructor(private readonly db: Queryable) {}

  /** Inserts a new order, its line items and its events in one statement; OrderExists when the ID is taken. */
  /**
   * Inserts the order with its line items and events - and, with `answer`, its Idempotency-Key's
   * answer - in one statement. When the answer takes a key not taken yet (`answer.fingerprint`) and
   * that key exists already, nothing is inserted: answers false.
   */
  async insert(order: OrderRecord, who: Who, events: NewEvent[], answer?: KeyAnswer): Promise<boolean> {
    const items = order.lineItems;
    const values: unknown[] = [
      order.id,
      order.customerEmail,
      order.status,
      order.totalCents,
      order.createdAt,
      items.map((i) => i.description),
      items.map((i) => i.priceCents),
      items.map((i) => i.quantity),
      ...eventParams(events, who),
    ];
    const takes = answer?.fingerprint !== undefined;
    let keyed = '';
    if (answer)
      keyed = `${answer.fingerprint !== undefined ? takeAnswerCte(values, { ...answer, fingerprint: answer.fingerprint }) : recordAnswerCte(values, answer, 'exists (select 1 from o)')},`;
    try {
      const rows = await this.db.query<{ created: boolean }>(
        `with ${takes ? keyed : ''} o as (
           insert into orders (id, customer_email, status, total_cents, created_at, updated_at)
           ${takes ? `select $1::varchar, $2::varchar, $3::varchar, $4::bigint, $5::timestamptz, $5::timestamptz where exists (select 1 from keyed)` : 'values ($1, $2, $3, $4, $5, $5)'}
           returning id),
         ${takes ? '' : keyed}
         ev as (insert into order_events (${EVENT_COLUMNS}) ${eventsFrom('$1', '$9', '$10', 'exists (select 1 from o)')}),
         li as (insert into line_items (order_id, position, description, price_cents, quantity)
           select o.id, t.n - 1, t.description, t.price_cents, t.quantity
           from o, unnest($6::text[], $7::bigint[], $8::int[]) with ordinality as t(description, price_cents, quantity, n))
         select exists (select 1 from o) as created`,
        values,
      );
      return rows[0].created;
    } catch (err) {
      if (isUniqueViolation(err, 'orders_pkey')) throw new OrderExists(order.id);
      throw err;
    }
  }

  async find(id: string): Promise<OrderRecord | undefined> {
    const rows = await this.db.query<OrderRow>(`select ${ORDER_COLUMNS}, ${ORDER_DETAILS} from orders o where o.id = $1`, [id]);
    return rows[0] && toOrder(rows[0]);
  }

  /** The order with the claim under way on it (who holds it, with which token). */
  async findWithClaim(id: string): Promise<OrderWithClaim | undefined> {
    const rows = await this.db.query<ClaimRow>(
      `select ${ORDER_COLUMNS}, ${ORDER_DETAILS}, ${CLAIM_COLUMNS} from orders o where o.id = $1`,
      [id],
    );
    return rows[0] && toOrderWithClaim(rows[0]);
  }

  /** Just the total, or undefined for no such order. */
  async totalOf(id: string): Promise<number | undefined> {
    const rows = await this.db.query<{ total_cents: string }>(`select total_cents from orders where id = $1`, [id]);
    return rows[0] && Number(rows[0].total_cents);
  }

  /**
   * Newest first, keyset-paged on the insertion sequence: `beforeSeq` is the last sequence of the
   * previous page. One statement text per combination of filters, so each gets a plan of its own
   * (orders_status_seq_index for a status, the seq index otherwise).
   */
  async page(args: { status?: OrderStatus; beforeSeq?: string; limit: number }): Promise<OrderPage> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (args.status) where.push(`o.status = $${values.push(args.status)}`);
    if (args.beforeSeq) where.push(`o.seq < $${values.push(args.beforeSeq)}`);
    const limit = `$${values.push(args.limit + 1)}`;
    const rows = await this.db.query<OrderRow & { seq: string }>(
      `select ${ORDER_COLUMNS}, o.seq, ${ORDER_DETAILS} from orders o
       ${where.length > 0 ? `where ${where.join(' and ')}` : ''} order by o.seq desc limit ${limit}`,
      values,
    );
    const page = rows.slice(0, args.limit);
    return { orders: page.map(toOrder), lastSeq: rows.length > args.limit ? page[page.length - 1].seq : null };
  }

  /** Sets an order's status fields (inside a transaction that holds its row lock). */
  async setStatus(id: string, change: OrderStatusFields): Promise<void> {
    await this.db.query(
      `update orders set status = $2, updated_at = $3, charged_at = $4, fulfilled_at = $5, cancelled_at = $6, cancel_reason = $7 where id = $1`,
      [id, change.status, change.updatedAt, change.chargedAt, change.fulfilledAt, change.cancelledAt, change.cancelReason],
    );
  }

  /** Locks the order's row for the rest of the transaction and returns it with its claim. */
  async lock(id: string): Promise<OrderWithClaim | undefined> {
    const rows = await this.db.query<ClaimRow>(
      `select ${ORDER_COLUMNS}, ${ORDER_DETAILS}, ${CLAIM_COLUMNS} from orders o where o.id = $1 for update of o`,
      [id],
    );
    return rows[0] && toOrderWithClaim(rows[0]);
  }
}

const CLAIM_COLUMNS = 'o.operation, o.operation_owner, o.operation_token';
type ClaimRow = OrderRow & { operation: string | null; operation_owner: number | null; operation_token: string | null };
const toOrderWithClaim = (row: ClaimRow): OrderWithClaim => ({
  ...toOrder(row),
  operation: row.operation,
  operationOwner: row.operation_owner,
  operationToken: row.operation_token,
});

// The three statements of the request-path baselines (plain-server.ts and lean-server.ts): each
// operation is one statement on order-up's own tables, and PostgreSQL builds the response JSON
// itself (the same shape as order-up's Order), so the baselines do as little per request as the job
// allows. Each is sent as a named (prepared) statement, parsed and planned once per connection.

/** RFC 3339 in UTC with milliseconds, as order-up's toISOString() writes it (null stays null). */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const item = (l: string) => `json_build_object('description', ${l}.description, 'priceCents', ${l}.price_cents, 'quantity', ${l}.quantity)`;

const itemsOf = (o: string) =>
  `coalesce((select json_agg(${item('l')} order by l.position) from line_items l where l.order_id = ${o}.id), '[]'::json)`;

/** The order's payment summary from the payments journal, as order-up's Order has it (see src/db/orders-repo.ts). */
const paymentOf = (o: string) => `(select case when count(*) = 0 then null else json_build_object(
    'status', case when bool_or(pay.state = 'in_doubt') then 'in_doubt' when bool_or(pay.state = 'started') then 'in_progress'
      when bool_or(pay.kind = 'refund' and pay.state = 'succeeded') then 'refunded'
      when bool_or(pay.kind = 'charge' and pay.state = 'succeeded') then 'charged' else 'none' end,
    'chargedCents', coalesce(sum(pay.amount_cents) filter (where pay.kind = 'charge' and pay.state = 'succeeded'), 0),
    'refundedCents', coalesce(-sum(pay.amount_cents) filter (where pay.kind = 'refund' and pay.state = 'succeeded'), 0)) end
    from payments pay where pay.order_id = ${o}.id)`;

const orderJson = (o: string, items: string, payment = paymentOf(o)) => `json_build_object(
  'id', ${o}.id, 'customerEmail', ${o}.customer_email, 'lineItems', ${items}, 'status', ${o}.status,
  'totalCents', ${o}.total_cents, 'createdAt', ${iso(`${o}.created_at`)}, 'updatedAt', ${iso(`${o}.updated_at`)},
  'chargedAt', ${iso(`${o}.charged_at`)}, 'fulfilledAt', ${iso(`${o}.fulfilled_at`)},
  'cancelledAt', ${iso(`${o}.cancelled_at`)}, 'cancelReason', ${o}.cancel_reason, 'payment', ${payment})`;

/** $1 id -> one row `{ body: {order} }`, or none. */
export const GET_ORDER = {
  name: 'bench_get_order',
  text: `select json_build_object('order', ${orderJson('o', itemsOf('o'))}) as body from orders o where o.id = $1`,
};

/**
 * $1 id, $2 e-mail, $3 total, $4 descriptions, $5 prices, $6 quantities -> `{ body: {order} }`.
 * Order and line items in one statement; the answer is built from what the inserts return (rows a
 * statement inserts are not visible to its own selects).
 */
export const CREATE_ORDER = {
  name: 'bench_create_order',
  text: `with o as (
      insert into orders (id, customer_email, status, total_cents, created_at, updated_at)
      values ($1, $2, 'pending', $3, now(), now()) returning *
    ), l as (
      insert into line_items (order_id, position, description, price_cents, quantity)
      select o.id, t.n - 1, t.description, t.price_cents, t.quantity
      from o, unnest($4::text[], $5::bigint[], $6::int[]) with ordinality as t(description, price_cents, quantity, n)
      returning position, description, price_cents, quantity
    )
    select json_build_object('order', ${orderJson('o', `(select json_agg(${item('l')} order by l.position) from l)`, 'null')}) as body from o`,
};

/**
 * $1 limit -> `{ body: {orders, nextCursor} }`, newest first. One row more than the page tells
 * whether there is a next page; the cursor is the last order's seq as it is (order-up encodes the
 * same number, the baselines need not).
 */
export const LIST_ORDERS = {
  name: 'bench_list_orders',
  text: `with page as (
      select o.*, row_number() over (order by o.seq desc) as n from orders o order by o.seq desc limit $1::int + 1
    )
    select json_build_object(
      'orders', coalesce(json_agg(${orderJson('p', itemsOf('p'))} order by p.seq desc) filter (where p.n <= $1::int), '[]'::json),
      'nextCursor', case when count(*) > $1::int then (min(p.seq) filter (where p.n <= $1::int))::text end
    ) as body from page p`,
};

export interface NewOrderBody {
  customerEmail: string;
  lineItems: { description: string; priceCents: number; quantity: number }[];
}

/** The values of CREATE_ORDER for a new order (the caller makes the id). */
export function createOrderValues(id: string, body: NewOrderBody): unknown[] {
  const items = body.lineItems;
  const total = items.reduce((sum, li) => sum + li.priceCents * li.quantity, 0);
  return [
    id,
    body.customerEmail,
    total,
    items.map((li) => li.description),
    items.map((li) => li.priceCents),
    items.map((li) => li.quantity),
  ];
}

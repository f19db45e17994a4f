import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type pg from 'pg';
import type { OrderStatus } from '../domain/order-state.js';
import type { PaymentState } from './entities.js';

// The hot path of charge, cancel and fulfill in as few round trips as PostgreSQL allows: one
// statement claims an order (and journals the payment), one records the outcome. Every charge
// spends its database time while the previous charge is with the charge service, so these
// statements decide how close the pipeline gets to the charge service's own pace.

/** An order as the domain works with it: plain data, no ORM identity. */
export interface OrderRecord {
  id: string;
  customerEmail: string;
  status: OrderStatus;
  totalCents: number;
  lineItems: { description: string; priceCents: number; quantity: number }[];
  createdAt: Date;
  updatedAt: Date;
  chargedAt: Date | null;
  fulfilledAt: Date | null;
  cancelledAt: Date | null;
  cancelReason: string | null;
}

interface OrderRow {
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
  line_items: { description: string; priceCents: number | string; quantity: number }[];
}

const ORDER_COLUMNS = `id, customer_email, status, total_cents, created_at, updated_at, charged_at, fulfilled_at, cancelled_at, cancel_reason`;
const LINE_ITEMS_JSON = (alias: string) => `coalesce((
    select json_agg(json_build_object('description', l.description, 'priceCents', l.price_cents, 'quantity', l.quantity) order by l.position)
    from line_items l where l.order_id = ${alias}.id), '[]'::json) as line_items`;

function toRecord(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    customerEmail: row.customer_email,
    status: row.status,
    totalCents: Number(row.total_cents),
    lineItems: row.line_items.map((li) => ({ description: li.description, priceCents: Number(li.priceCents), quantity: li.quantity })),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    chargedAt: row.charged_at && new Date(row.charged_at),
    fulfilledAt: row.fulfilled_at && new Date(row.fulfilled_at),
    cancelledAt: row.cancelled_at && new Date(row.cancelled_at),
    cancelReason: row.cancel_reason,
  };
}

/** The part of knex's client we use: its connection pool (the same one MikroORM queries through). */
interface KnexPool {
  acquireConnection(): Promise<pg.ClientBase>;
  releaseConnection(connection: pg.ClientBase): Promise<unknown>;
}

// Statement text -> prepared statement name. The set of texts is small and fixed (a few variants
// per operation), so this never grows beyond a handful of entries.
const statementNames = new Map<string, string>();

/**
 * Runs one of the hot statements on a connection of the ORM's own pool, bypassing MikroORM's and
 * knex's query layers (which inline every value into the SQL text). Values travel as bind
 * parameters, so a card token never becomes part of a statement's text, and each statement is
 * prepared once per connection, so PostgreSQL stops parsing and planning it for every charge (its
 * CPU per charge in `make bench` fell by about a third). Outside any transaction, exactly like the
 * em.getConnection().execute() it replaces.
 */
async function run<T>(em: EntityManager, sql: string, values: unknown[]): Promise<T[]> {
  let n = 0;
  const text = sql.replace(/\?/g, () => `$${(n += 1)}`);
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `order_up_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  const pool = em.getConnection().getKnex().client as unknown as KnexPool;
  const connection = await pool.acquireConnection();
  try {
    return (await connection.query<T & pg.QueryResultRow>({ name, text, values })).rows;
  } finally {
    await pool.releaseConnection(connection);
  }
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** The charge to journal together with the claim (refunds are journaled by domain/payments.ts). */
export interface JournalEntry {
  paymentId: string;
  cardToken: string;
}

/**
 * Sets the order's operation to ours if no operation is under way, its status is one of `from`,
 * and none of its payments is open (started or in doubt) - and, when `charge` is given and the
 * total is not zero, writes the `started` charge of the total in the same statement. Returns the
 * claimed order and whether a payment was journaled, or null when the order could not be claimed
 * (the caller finds out why, off the hot path).
 */
export async function claimOrderRow(
  em: EntityManager,
  args: { id: string; operation: string; owner: number; token: string; from: OrderStatus[]; charge?: JournalEntry },
): Promise<{ order: OrderRecord; journaled: boolean } | null> {
  const params: unknown[] = [args.operation, args.owner, args.token, args.id, ...args.from, args.id];
  let journal = `select null::uuid as id where false`;
  if (args.charge) {
    journal = `insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at)
      select ?::uuid, c.id, 'charge', c.total_cents, ?::text, 'started', ?, now(), now()
      from claimed c where c.total_cents > 0 returning id`;
    params.push(args.charge.paymentId, args.charge.cardToken, args.owner);
  }
  const rows = await run<OrderRow & { journaled: boolean }>(
    em,
    `with claimed as (
       update orders set operation = ?, operation_owner = ?, operation_token = ?::uuid
       where id = ? and operation is null and status in (${placeholders(args.from.length)})
         and not exists (select 1 from payments p where p.order_id = ? and p.state in ('started', 'in_doubt'))
       returning ${ORDER_COLUMNS}
     ), journal as (${journal})
     select c.*, ${LINE_ITEMS_JSON('c')}, exists (select 1 from journal) as journaled from claimed c`,
    params,
  );
  if (rows.length === 0) return null;
  return { order: toRecord(rows[0]), journaled: rows[0].journaled };
}

/** The order's new state (or none, to leave it as it was), written together with the release. */
export interface OrderChange {
  status: OrderStatus;
  updatedAt: Date;
  chargedAt: Date | null;
  fulfilledAt: Date | null;
  cancelledAt: Date | null;
  cancelReason: string | null;
}

/**
 * Releases the order held by the claim `token`, applying `change` if given; with `payment`, also
 * records the payment's outcome - all in one statement, so one cannot happen without the other, and
 * neither happens unless the order is still held by that claim (and the payment still `started`).
 * Returns false when nothing was written.
 */
export async function finishOrderRow(
  em: EntityManager,
  args: { id: string; token: string; change?: OrderChange; payment?: { id: string; state: PaymentState; outcome: string } },
): Promise<boolean> {
  const params: unknown[] = [args.id, args.token];
  let ctes = `with held as (select id from orders where id = ? and operation_token = ?::uuid for update)`;
  let guard = '';
  if (args.payment) {
    ctes += `, p as (update payments set state = ?, outcome = ?, updated_at = now()
      where id = ? and state = 'started' and exists (select 1 from held) returning order_id)`;
    params.push(args.payment.state, args.payment.outcome, args.payment.id);
    guard = ` and exists (select 1 from p)`;
  }
  let set = 'operation = null, operation_owner = null, operation_token = null';
  if (args.change) {
    const c = args.change;
    set += ', status = ?, updated_at = ?, charged_at = ?, fulfilled_at = ?, cancelled_at = ?, cancel_reason = ?';
    params.push(c.status, c.updatedAt, c.chargedAt, c.fulfilledAt, c.cancelledAt, c.cancelReason);
  }
  const rows = await run<{ id: string }>(
    em,
    `${ctes} update orders set ${set} where id in (select id from held)${guard} returning id`,
    params,
  );
  return rows.length === 1;
}

/**
 * Lets go of a claim whose work failed before it could record an outcome: the order is released and
 * a `started` payment of that claim's owner becomes `in_doubt` (whatever happened upstream is not
 * guessed) - in one statement, and only if the order is still held by that very claim.
 */
export async function abandonOrderRow(
  em: EntityManager,
  args: { id: string; token: string; owner: number; outcome: string; state?: 'in_doubt' | 'failed' },
): Promise<void> {
  await run(
    em,
    `with released as (
       update orders set operation = null, operation_owner = null, operation_token = null
       where id = ? and operation_token = ?::uuid returning id)
     update payments set state = ?, outcome = ?, updated_at = now()
     where order_id = ? and owner = ? and state = 'started' and exists (select 1 from released)`,
    [args.id, args.token, args.state ?? 'in_doubt', args.outcome, args.id, args.owner],
  );
}

/**
 * Everything a process that is gone left behind: its claims on orders are released, then its
 * `started` payments become `in_doubt`. Two statements, in this order, on purpose: a refund is
 * journaled only while its order is held (and locked) by its claim, so once the first statement has
 * released the claims no new payment of `owner` can appear, and the second - with a snapshot of its
 * own - sees every one that did. Returns how many payments became in doubt.
 */
export async function recoverOwnerRows(em: EntityManager, owner: number, outcome: string): Promise<number> {
  // One transaction, so an order is never released while its payment stays `started`; under READ
  // COMMITTED its second statement still takes a snapshot of its own.
  const pool = em.getConnection().getKnex().client as unknown as KnexPool;
  const connection = await pool.acquireConnection();
  try {
    await connection.query('begin');
    await connection.query('update orders set operation = null, operation_owner = null, operation_token = null where operation_owner = $1', [owner]);
    const { rows } = await connection.query(`update payments set state = 'in_doubt', outcome = $1, updated_at = now() where owner = $2 and state = 'started' returning id`, [
      outcome,
      owner,
    ]);
    await connection.query('commit');
    return rows.length;
  } catch (err) {
    await connection.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await pool.releaseConnection(connection);
  }
}

import type { Database, Queryable } from './database.js';
import { EVENT_COLUMNS, eventParams, eventsFrom, whoColumns, type NewEvent, type Who } from './events-repo.js';
import { recordAnswerCte, type KeyAnswer } from './idempotency-repo.js';
import { ORDER_COLUMNS, ORDER_DETAILS, toOrder, type OrderRow } from './orders-repo.js';
import type { OrderRecord, OrderStatus, OrderStatusFields, PaymentState } from './records.js';

// Claims: one operation (charge, cancel, fulfill) at a time per order, across every process. An
// order's `operation`, `operation_owner` (the claiming process's lease key) and `operation_token`
// (this one claim) say who holds it. These are the hot statements of the charge pipeline: one
// claims an order (and journals its charge), one records the outcome and lets go. Every charge
// spends its database time while the previous charge is with the charge service, so they decide how
// close the pipeline gets to the charge service's own pace.

/** The charge to journal together with the claim (refunds are journaled by PaymentsRepository). */
export interface JournalEntry {
  paymentId: string;
  cardToken: string;
}

export interface ClaimArgs {
  id: string;
  operation: string;
  owner: number;
  token: string;
  /** The statuses the operation may start from. */
  from: OrderStatus[];
  charge?: JournalEntry;
  /** Who claims: recorded on the `charge.started` event when a charge is journaled. */
  who: Who;
}

export interface PaymentOutcome {
  id: string;
  state: PaymentState;
  outcome: string;
}

export class ClaimsRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Sets the order's operation to ours if no operation is under way, its status is one of `from`,
   * and none of its payments is open (started or in doubt) - and, when `charge` is given and the
   * total is not zero, writes the `started` charge of the total and its `charge.started` event in
   * the same statement. Returns the
   * claimed order and whether a payment was journaled, or null when the order could not be claimed
   * (the caller finds out why, off the hot path).
   */
  async claim(args: ClaimArgs): Promise<{ order: OrderRecord; journaled: boolean } | null> {
    const values: unknown[] = [args.operation, args.owner, args.token, args.id, args.from];
    let journal = `select null::uuid as id where false`;
    let started = '';
    if (args.charge) {
      journal = `insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at)
        select $6::uuid, c.id, 'charge', c.total_cents, $7::text, 'started', $2, now(), now()
        from claimed c where c.total_cents > 0 returning id, order_id, amount_cents`;
      started = `, started as (insert into order_events (${EVENT_COLUMNS})
        select j.order_id, 'charge.started', ${whoColumns('$8')}, jsonb_build_object('paymentId', j.id, 'kind', 'charge', 'amountCents', j.amount_cents)
        from journal j)`;
      values.push(args.charge.paymentId, args.charge.cardToken, eventParams([], args.who)[1]);
    }
    const rows = await this.db.query<OrderRow & { journaled: boolean }>(
      `with claimed as (
         update orders o set operation = $1, operation_owner = $2, operation_token = $3::uuid
         where o.id = $4 and o.operation is null and o.status = any($5::text[])
           and not exists (select 1 from payments p where p.order_id = $4 and p.state in ('started', 'in_doubt'))
         returning ${ORDER_COLUMNS}
       ), journal as (${journal})${started}
       select o.*, ${ORDER_DETAILS}, exists (select 1 from journal) as journaled from claimed o`,
      values,
    );
    if (rows.length === 0) return null;
    return { order: toOrder(rows[0]), journaled: rows[0].journaled };
  }

  /**
   * Releases the order held by the claim `token`, applying `change` if given; with `payment`, also
   * records the payment's outcome - all in one statement, so one cannot happen without the other,
   * and neither happens unless the order is still held by that claim (and the payment still
   * `started`) - and so are the `events` that describe it. Returns false when nothing was written.
   */
  async finish(args: {
    id: string;
    token: string;
    change?: OrderStatusFields;
    payment?: PaymentOutcome;
    events?: NewEvent[];
    who?: Who;
    /** The answer of the Idempotency-Key the operation runs under, stored with its outcome. */
    answer?: KeyAnswer;
  }): Promise<boolean> {
    const values: unknown[] = [args.id, args.token];
    let ctes = `with held as (select id from orders where id = $1 and operation_token = $2::uuid for update)`;
    let guard = '';
    if (args.payment) {
      ctes += `, p as (update payments set state = $${values.push(args.payment.state)}, outcome = $${values.push(args.payment.outcome)}, updated_at = now()
        where id = $${values.push(args.payment.id)} and state = 'started' and exists (select 1 from held) returning order_id)`;
      guard = ` and exists (select 1 from p)`;
    }
    if (args.events && args.events.length > 0 && args.who) {
      const [events, who] = eventParams(args.events, args.who);
      const guard = `exists (select 1 from held)${args.payment ? ' and exists (select 1 from p)' : ''}`;
      ctes += `, ev as (insert into order_events (${EVENT_COLUMNS}) ${eventsFrom('$1', `$${values.push(events)}`, `$${values.push(who)}`, guard)})`;
    }
    if (args.answer) ctes += `, ${recordAnswerCte(values, args.answer, `exists (select 1 from held)${guard}`)}`;
    let set = 'operation = null, operation_owner = null, operation_token = null';
    if (args.change) {
      const c = args.change;
      set += `, status = $${values.push(c.status)}, updated_at = $${values.push(c.updatedAt)}, charged_at = $${values.push(c.chargedAt)}`;
      set += `, fulfilled_at = $${values.push(c.fulfilledAt)}, cancelled_at = $${values.push(c.cancelledAt)}, cancel_reason = $${values.push(c.cancelReason)}`;
    }
    const rows = await this.db.query<{ id: string }>(
      `${ctes} update orders set ${set} where id in (select id from held)${guard} returning id`,
      values,
    );
    return rows.length === 1;
  }

  /**
   * Lets go of a claim whose work failed before it could record an outcome: the order is released
   * and a `started` payment of that claim's owner becomes `state` (in doubt unless the caller knows
   * no money moved) - in one statement, and only if the order is still held by that very claim.
   */
  async abandon(args: {
    id: string;
    token: string;
    owner: number;
    outcome: string;
    state: 'in_doubt' | 'failed';
    who: Who;
  }): Promise<void> {
    await this.db.query(
      `with released as (
         update orders set operation = null, operation_owner = null, operation_token = null
         where id = $1 and operation_token = $2::uuid returning id),
       paid as (
         update payments set state = $3, outcome = $4, updated_at = now()
         where order_id = $1 and owner = $5 and state = 'started' and exists (select 1 from released)
         returning id, kind, amount_cents)
       insert into order_events (${EVENT_COLUMNS})
       select $1, p.kind || '.' || $3, ${whoColumns('$6')}, jsonb_build_object('paymentId', p.id, 'kind', p.kind, 'amountCents', p.amount_cents, 'outcome', $4::text)
       from paid p`,
      [args.id, args.token, args.state, args.outcome, args.owner, eventParams([], args.who)[1]],
    );
  }

  /** The owners (process keys) of every claim, `started` payment and running idempotency key. */
  async owners(): Promise<number[]> {
    const rows = await this.db.query<{ owner: number }>(
      `select distinct owner from payments where state = 'started'
       union select distinct operation_owner from orders where operation_owner is not null
       union select distinct owner from idempotency_keys where owner is not null`,
    );
    return rows.map((r) => r.owner);
  }
}

/**
 * Everything a process that is gone left behind: its claims on orders are released, then its
 * `started` payments become `in_doubt`, and its running idempotency keys are freed. Two statements, in this order, in one transaction: a refund
 * is journaled only while its order is held (and locked) by its claim, so once the first statement
 * has released the claims no new payment of `owner` can appear, and the second - with a snapshot of
 * its own under READ COMMITTED - sees every one that did. Returns how many payments became in doubt.
 */
export async function recoverOwnerWork(db: Database, owner: number, outcome: string): Promise<number> {
  const system = eventParams([], { kind: 'system' })[1];
  return db.transaction(async (tx) => {
    await tx.query(
      `with released as (
         update orders o set operation = null, operation_owner = null, operation_token = null
         from (select id, operation from orders where operation_owner = $1 for update) held
         where o.id = held.id returning o.id, held.operation)
       insert into order_events (${EVENT_COLUMNS})
       select r.id, 'operation.recovered', ${whoColumns('$2')}, jsonb_build_object('operation', r.operation, 'process', $1::int) from released r`,
      [owner, system],
    );
    const rows = await tx.query<{ id: string }>(
      `with doubted as (
         update payments set state = 'in_doubt', outcome = $1, updated_at = now() where owner = $2 and state = 'started'
         returning id, order_id, kind, amount_cents),
       ev as (insert into order_events (${EVENT_COLUMNS})
         select d.order_id, d.kind || '.in_doubt', ${whoColumns('$3')},
           jsonb_build_object('paymentId', d.id, 'kind', d.kind, 'amountCents', d.amount_cents, 'outcome', $1::text) from doubted d)
       select id from doubted`,
      [outcome, owner, system],
    );
    // Its running idempotency keys are freed with it: a retry runs, and meets payment_in_doubt
    // where money may have moved.
    await tx.query(`delete from idempotency_keys where state = 'running' and owner = $1`, [owner]);
    return rows.length;
  });
}

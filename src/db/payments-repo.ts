import type { Queryable } from './database.js';
import { EVENT_COLUMNS, eventParams, whoColumns, type Who } from './events-repo.js';
import type { PaymentRecord, PaymentState } from './records.js';

// The payments journal: one row per call to the charge service, written before the call leaves.
// The card token is stored so a refund can reuse it; it leaves this layer only towards the charge
// service (journalRefund) and is never part of a PaymentRecord.

const PAYMENT_COLUMNS = 'p.id, p.order_id, p.kind, p.amount_cents, p.state, p.created_at, p.updated_at, p.outcome, p.cancel_reason';

interface PaymentRow {
  id: string;
  order_id: string;
  kind: PaymentRecord['kind'];
  amount_cents: string;
  state: PaymentState;
  created_at: Date;
  updated_at: Date;
  outcome: string | null;
  cancel_reason: string | null;
}

const toPayment = (r: PaymentRow): PaymentRecord => ({
  id: r.id,
  orderId: r.order_id,
  kind: r.kind,
  amountCents: Number(r.amount_cents),
  state: r.state,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  outcome: r.outcome,
  cancelReason: r.cancel_reason,
});

export class PaymentsRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Writes the `started` refund of an order held by the claim `token`: the negated amount of its
   * successful charge, to that charge's card, with the cancel's reason. Only while that very claim
   * still holds the order (its row locked meanwhile): should another process have recovered the
   * order, nothing is journaled (undefined), so nothing is sent. Its `refund.started` event goes in
   * the same statement.
   */
  async journalRefund(args: { orderId: string; token: string; paymentId: string; owner: number; cancelReason: string | null; who: Who }) {
    const rows = await this.db.query<{ card_token: string; amount_cents: string }>(
      `with held as (select id from orders where id = $1 and operation_token = $2::uuid for update),
       refund as (
         insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at, cancel_reason)
         select $3::uuid, p.order_id, 'refund', -p.amount_cents, p.card_token, 'started', $4, now(), now(), $5
         from payments p join held on held.id = p.order_id where p.kind = 'charge' and p.state = 'succeeded'
         order by p.created_at desc limit 1
         returning id, order_id, card_token, amount_cents),
       ev as (insert into order_events (${EVENT_COLUMNS})
         select r.order_id, 'refund.started', ${whoColumns('$6')}, jsonb_build_object('paymentId', r.id, 'kind', 'refund', 'amountCents', r.amount_cents, 'reason', $5::text)
         from refund r)
       select card_token, amount_cents from refund`,
      [args.orderId, args.token, args.paymentId, args.owner, args.cancelReason, eventParams([], args.who)[1]],
    );
    return rows[0] && { cardToken: rows[0].card_token, amountCents: Number(rows[0].amount_cents) };
  }

  /** The order's payments that are still open (started or in doubt). */
  async openOf(orderId: string): Promise<PaymentRecord[]> {
    const rows = await this.db.query<PaymentRow>(
      `select ${PAYMENT_COLUMNS} from payments p where p.order_id = $1 and p.state in ('started', 'in_doubt')`,
      [orderId],
    );
    return rows.map(toPayment);
  }

  async find(id: string): Promise<PaymentRecord | undefined> {
    const rows = await this.db.query<PaymentRow>(`select ${PAYMENT_COLUMNS} from payments p where p.id = $1`, [id]);
    return rows[0] && toPayment(rows[0]);
  }

  /** Locks the payment's row for the rest of the transaction. */
  async lock(id: string): Promise<PaymentRecord | undefined> {
    const rows = await this.db.query<PaymentRow>(`select ${PAYMENT_COLUMNS} from payments p where p.id = $1 for update`, [id]);
    return rows[0] && toPayment(rows[0]);
  }

  async setOutcome(id: string, state: PaymentState, outcome: string, at: Date): Promise<void> {
    await this.db.query(`update payments set state = $2, outcome = $3, updated_at = $4 where id = $1`, [id, state, outcome, at]);
  }

  /**
   * Replaces `from`'s outcome of an in-doubt payment with what is known after all (an event of type
   * `<kind>.<eventState>` says so); false when it was not so.
   */
  async correctInDoubt(
    id: string,
    from: string,
    to: { state: PaymentState; outcome: string },
    eventState: string,
    who: Who,
  ): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      `with fixed as (
         update payments set state = $2, outcome = $3, updated_at = now() where id = $1 and state = 'in_doubt' and outcome = $4
         returning id, order_id, kind, amount_cents),
       ev as (insert into order_events (${EVENT_COLUMNS})
         select f.order_id, f.kind || '.' || $5, ${whoColumns('$6')},
           jsonb_build_object('paymentId', f.id, 'kind', f.kind, 'amountCents', f.amount_cents, 'outcome', $3::text, 'corrected', true) from fixed f)
       select id from fixed`,
      [id, to.state, to.outcome, from, eventState, eventParams([], who)[1]],
    );
    return rows.length === 1;
  }

  /** Adds `note` to an in-doubt payment's outcome (and a `<kind>.late_answer` event); false when it is no longer in doubt. */
  async noteOnInDoubt(id: string, note: string, answer: string, who: Who): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      `with noted as (
         update payments set outcome = outcome || $2, updated_at = now() where id = $1 and state = 'in_doubt'
         returning id, order_id, kind, amount_cents),
       ev as (insert into order_events (${EVENT_COLUMNS})
         select n.order_id, n.kind || '.late_answer', ${whoColumns('$4')},
           jsonb_build_object('paymentId', n.id, 'kind', n.kind, 'amountCents', n.amount_cents, 'answer', $3::text) from noted n)
       select id from noted`,
      [id, note, answer, eventParams([], who)[1]],
    );
    return rows.length === 1;
  }

  /** How many payments are in doubt (for the metrics; the partial index on open payments serves it). */
  async countInDoubt(): Promise<number> {
    const rows = await this.db.query<{ n: number }>(`select count(*)::int as n from payments where state = 'in_doubt'`);
    return rows[0].n;
  }

  /**
   * A page of payments (of one state, or all), oldest first, keyset-paged on when they started:
   * `after` is the last page's [created_at as PostgreSQL wrote it, id], so no microsecond is lost.
   */
  async page(args: {
    state?: PaymentState;
    after?: [string, string];
    limit: number;
  }): Promise<{ payments: PaymentRecord[]; last: [string, string] | null }> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (args.state) where.push(`p.state = $${values.push(args.state)}`);
    if (args.after)
      where.push(`(p.created_at, p.id) > ($${values.push(args.after[0])}::timestamptz, $${values.push(args.after[1])}::uuid)`);
    const rows = await this.db.query<PaymentRow & { created_key: string }>(
      `select ${PAYMENT_COLUMNS}, p.created_at::text as created_key from payments p
       ${where.length > 0 ? `where ${where.join(' and ')}` : ''} order by p.created_at, p.id limit $${values.push(args.limit + 1)}`,
      values,
    );
    const page = rows.slice(0, args.limit);
    const lastRow = page[page.length - 1];
    return { payments: page.map(toPayment), last: rows.length > args.limit && lastRow ? [lastRow.created_key, lastRow.id] : null };
  }

  /** Every payment whose outcome is unknown, oldest first. */
  async inDoubt(): Promise<PaymentRecord[]> {
    const rows = await this.db.query<PaymentRow>(
      `select ${PAYMENT_COLUMNS} from payments p where p.state = 'in_doubt' order by p.created_at, p.id`,
    );
    return rows.map(toPayment);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * The order timeline: one row per change of an order, written in the same statement or
 * transaction as the change (see db/events-repo.ts). Orders and payments that exist before this
 * migration get their events backfilled (actor `system`, `data.backfilled`), in time order.
 */
export class Migration20261129010000_order_events extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table order_events (
      seq bigserial primary key,
      order_id varchar(64) not null references orders (id) on delete cascade,
      at timestamptz not null default now(),
      type varchar(40) not null,
      actor_kind varchar(8) not null check (actor_kind in ('customer', 'staff', 'cli', 'system')),
      actor_name varchar(64) null,
      request_id varchar(64) null,
      data jsonb not null default '{}'
    );`);
    this.addSql(`create index order_events_order_id_seq_index on order_events (order_id, seq);`);
    this.addSql(`insert into order_events (order_id, at, type, actor_kind, data)
      select order_id, at, type, 'system', data || '{"backfilled": true}'::jsonb from (
        select o.id as order_id, o.created_at as at, 'order.created' as type, 0 as rank,
               jsonb_build_object('totalCents', o.total_cents, 'lineItems', (select count(*) from line_items l where l.order_id = o.id)) as data
        from orders o
        union all
        select p.order_id, p.created_at, p.kind || '.started', 1, jsonb_build_object('paymentId', p.id, 'kind', p.kind, 'amountCents', p.amount_cents)
        from payments p
        union all
        select p.order_id, p.updated_at, p.kind || '.' || case p.state when 'succeeded' then 'succeeded' when 'in_doubt' then 'in_doubt' else 'failed' end, 2,
               jsonb_build_object('paymentId', p.id, 'kind', p.kind, 'amountCents', p.amount_cents, 'outcome', p.outcome)
        from payments p where p.state <> 'started'
        union all
        select o.id, o.cancelled_at, 'order.cancelled', 3, jsonb_build_object('reason', o.cancel_reason) from orders o where o.cancelled_at is not null
        union all
        select o.id, o.fulfilled_at, 'order.fulfilled', 3, '{}'::jsonb from orders o where o.fulfilled_at is not null
      ) history order by at, rank;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists order_events;`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/** Orders with their line items, and the payments journal. Written by hand: the constraints are the point. */
export class Migration20261125000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create sequence orders_seq_seq as bigint;`);
    this.addSql(`create table orders (
      id varchar(64) primary key,
      seq bigint not null default nextval('orders_seq_seq') unique,
      customer_email varchar(254) not null,
      status varchar(16) not null check (status in ('pending', 'charged', 'fulfilled', 'cancelled')),
      total_cents bigint not null check (total_cents >= 0),
      created_at timestamptz not null,
      updated_at timestamptz not null,
      charged_at timestamptz null,
      fulfilled_at timestamptz null,
      cancelled_at timestamptz null,
      cancel_reason text null,
      operation varchar(16) null,
      operation_owner integer null
    );`);
    this.addSql(`alter sequence orders_seq_seq owned by orders.seq;`);
    this.addSql(`create index orders_status_seq_index on orders (status, seq);`);
    this.addSql(`create table line_items (
      id serial primary key,
      order_id varchar(64) not null references orders (id) on delete cascade,
      position integer not null,
      description varchar(200) not null,
      price_cents bigint not null,
      quantity integer not null check (quantity between 1 and 10000),
      unique (order_id, position),
      unique (order_id, description)
    );`);
    this.addSql(`create table payments (
      id uuid primary key,
      order_id varchar(64) not null references orders (id),
      kind varchar(8) not null check (kind in ('charge', 'refund')),
      amount_cents bigint not null,
      card_token text not null,
      state varchar(16) not null check (state in ('started', 'succeeded', 'failed', 'in_doubt')),
      owner integer not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      outcome text null
    );`);
    this.addSql(`create index payments_order_id_index on payments (order_id);`);
    // At most one charge or refund of an order is open (started or in doubt) at any time.
    this.addSql(`create unique index payments_one_open_per_order on payments (order_id) where state in ('started', 'in_doubt');`);
    // Process keys: each running order-up process takes one and holds a session advisory lock on it.
    this.addSql(`create sequence order_up_process_key as integer cycle;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists payments;`);
    this.addSql(`drop table if exists line_items;`);
    this.addSql(`drop table if exists orders;`);
    this.addSql(`drop sequence if exists order_up_process_key;`);
  }
}

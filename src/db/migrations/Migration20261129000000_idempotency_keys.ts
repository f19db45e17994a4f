import { Migration } from '@mikro-orm/migrations';

/**
 * Stored answers for `Idempotency-Key` (the spec's "Retrying safely"): one row per caller and key,
 * `running` (owned by a live process's lease key) while its first request runs, then `done` with
 * the answer that request got, until `expires_at`.
 */
export class Migration20261129000000_idempotency_keys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table idempotency_keys (
      caller varchar(80) not null,
      key varchar(255) not null,
      fingerprint char(64) not null,
      state varchar(8) not null check (state in ('running', 'done')),
      owner integer null,
      status integer null,
      body text null,
      location text null,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      primary key (caller, key),
      check ((state = 'running') = (owner is not null)),
      check ((state = 'done') = (status is not null))
    );`);
    this.addSql(`create index idempotency_keys_expires_at_index on idempotency_keys (expires_at);`);
    this.addSql(`create index idempotency_keys_owner_index on idempotency_keys (owner) where owner is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists idempotency_keys;`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * A refund carries the cancellation's reason, so a cancel whose refund ends in doubt still
 * records why once staff resolve the refund as succeeded.
 */
export class Migration20261125010000_refund_reason extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table payments add column cancel_reason text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table payments drop column cancel_reason;`);
  }
}

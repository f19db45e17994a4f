import { Migration } from '@mikro-orm/migrations';

/**
 * Each claim on an order gets a token of its own, so finishing or releasing a claim can never
 * touch another claim of the same process (the owner key only says which process holds it).
 */
export class Migration20261125020000_operation_token extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table orders add column operation_token uuid null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table orders drop column operation_token;`);
  }
}

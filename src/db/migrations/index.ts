import type { Migration } from '@mikro-orm/migrations';
import { Migration20261125000000_initial } from './Migration20261125000000_initial.js';
import { Migration20261125010000_refund_reason } from './Migration20261125010000_refund_reason.js';
import { Migration20261125020000_operation_token } from './Migration20261125020000_operation_token.js';
import { Migration20261129000000_idempotency_keys } from './Migration20261129000000_idempotency_keys.js';
import { Migration20261129010000_order_events } from './Migration20261129010000_order_events.js';
import { MIGRATION_NAMES, type MigrationName } from './names.js';

const CLASSES: Record<MigrationName, new (...args: ConstructorParameters<typeof Migration>) => Migration> = {
  Migration20261125000000_initial,
  Migration20261125010000_refund_reason,
  Migration20261125020000_operation_token,
  Migration20261129000000_idempotency_keys,
  Migration20261129010000_order_events,
};

// Listed explicitly (not discovered by glob) so the same list works from dist/, under jest and in the CLI.
export const migrationsList = MIGRATION_NAMES.map((name) => ({ name, class: CLASSES[name] }));

// The migrations in the order they apply, by name. Kept apart from their classes so a process can
// tell whether any is pending without loading MikroORM (see db/schema.ts); index.ts maps each name
// to its class, and tsc fails if the two lists drift.
export const MIGRATION_NAMES = [
  'Migration20261125000000_initial',
  'Migration20261125010000_refund_reason',
  'Migration20261125020000_operation_token',
  'Migration20261129000000_idempotency_keys',
  'Migration20261129010000_order_events',
] as const;

export type MigrationName = (typeof MIGRATION_NAMES)[number];

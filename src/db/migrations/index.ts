import { Migration20261125000000_initial } from './Migration20261125000000_initial.js';
import { Migration20261125010000_refund_reason } from './Migration20261125010000_refund_reason.js';
import { Migration20261125020000_operation_token } from './Migration20261125020000_operation_token.js';

// Listed explicitly (not discovered by glob) so the same list works from dist/, under jest and in the CLI.
export const migrationsList = [
  { name: 'Migration20261125000000_initial', class: Migration20261125000000_initial },
  { name: 'Migration20261125010000_refund_reason', class: Migration20261125010000_refund_reason },
  { name: 'Migration20261125020000_operation_token', class: Migration20261125020000_operation_token },
];

import { Option, type Command } from 'commander';
import type { DomainContext } from '../../src/domain/context.js';
import { runBatch, summaryLine, type BatchResult, type ItemResult } from '../batch.js';
import { clean, money } from '../format.js';
import { EXIT_FAILED, EXIT_OK, UsageError, example, out, printJson, runCommand, withRuntime, type Cli } from '../shared.js';

// Orders handled at once in a batch: the fulfillment service takes several requests at a time;
// refunds wait their turn in the charge queue whatever this number is.
const CONCURRENCY = 4;

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}

function failedLine(r: ItemResult): string {
  return `FAILED     ${r.id}  ${r.code}: ${clean(r.detail ?? '')}`;
}

/** Prints the batch's outcome; its exit status: 0 when every order succeeded, else 1. */
function finish(batch: BatchResult, json: boolean | undefined, summary: string): number {
  if (json) {
    printJson({
      results: batch.results,
      summary: { succeeded: batch.succeeded, failed: batch.failed, notAttempted: batch.notAttempted },
    });
  } else if (batch.results.length > 1 || batch.notAttempted > 0) {
    out(summary);
  }
  return batch.succeeded === batch.results.length ? EXIT_OK : EXIT_FAILED;
}

/** Every charged order's ID, paging through the list (collected first: fulfilling changes the list). */
async function allCharged(ctx: DomainContext): Promise<string[]> {
  const { listOrders } = await import('../../src/domain/orders.js');
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listOrders(ctx, { status: 'charged', limit: 500, cursor });
    ids.push(...page.orders.map((o) => o.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return ids;
}

/** `fulfill` and `cancel`: one or many orders, each on its own, with progress and a summary. */
export function registerBatchCommands(program: Command, cli: Cli): void {
  program
    .command('fulfill')
    .description('Fulfill charged orders: every line item goes to the fulfillment service, then the order is fulfilled.')
    .argument('[ids...]', 'the order IDs (one that starts with "-" goes after "--", every option before it)')
    .option('--all-charged', 'fulfill every order that is charged now')
    .option('--json', 'print {"results": [...], "summary": ...} as JSON (progress goes to stderr)')
    .addHelpText('after', example('order-up fulfill 8Jq2x0fN3kQ b3Xr9mT1pZa', 'order-up fulfill --all-charged'))
    .action(async (ids: string[], opts: { allCharged?: boolean; json?: boolean }) => {
      if (opts.allCharged && ids.length > 0) throw new UsageError('fulfill takes order IDs or --all-charged, not both');
      if (!opts.allCharged && ids.length === 0) throw new UsageError('fulfill needs at least one order ID, or --all-charged');
      await runCommand(cli, opts.json, async () => {
        const { fulfillOrder } = await import('../../src/domain/fulfill.js');
        return withRuntime(cli, async (rt) => {
          const targets = opts.allCharged ? await allCharged(rt.context()) : unique(ids);
          if (targets.length === 0) {
            if (opts.json) printJson({ results: [], summary: { succeeded: 0, failed: 0, notAttempted: 0 } });
            else out('No charged orders to fulfill.');
            return EXIT_OK;
          }
          const batch = await runBatch(targets, async (id) => ({ status: (await fulfillOrder(rt.context(), id)).order.status }), {
            doing: 'fulfilling',
            json: opts.json === true,
            concurrency: CONCURRENCY,
            describe: (r) => (r.ok ? `fulfilled  ${r.id}` : failedLine(r)),
          });
          return finish(batch, opts.json, summaryLine(batch, 'fulfilled'));
        });
      });
    });

  program
    .command('cancel')
    .description('Cancel orders. A charged order is refunded in full first (through the same charge queue as the server).')
    .argument('<ids...>', 'the order IDs (one that starts with "-" goes after "--", every option before it)')
    .addOption(
      new Option('--reason <text>', 'why, stored on each order').argParser((v: string) => {
        if (v.length > 500) throw new UsageError('--reason may be at most 500 characters');
        return v;
      }),
    )
    .option('--json', 'print {"results": [...], "summary": ...} as JSON (progress goes to stderr)')
    .addHelpText(
      'after',
      example('order-up cancel 8Jq2x0fN3kQ --reason "Customer asked by phone"', 'order-up cancel 8Jq2x0fN3kQ b3Xr9mT1pZa'),
    )
    .action(async (ids: string[], opts: { reason?: string; json?: boolean }) => {
      await runCommand(cli, opts.json, async () => {
        const { cancelOrder } = await import('../../src/domain/cancel.js');
        return withRuntime(cli, async (rt) => {
          const batch = await runBatch(
            unique(ids),
            async (id) => {
              const res = await cancelOrder(rt.context(), id, opts.reason);
              return { status: res.order.status, refundedCents: res.refundedCents };
            },
            {
              doing: 'cancelling',
              json: opts.json === true,
              concurrency: CONCURRENCY,
              describe: (r) =>
                r.ok ? `cancelled  ${r.id}${r.refundedCents ? `  refunded ${money(r.refundedCents)}` : ''}` : failedLine(r),
            },
          );
          const refunded = batch.results.reduce((sum, r) => sum + (r.refundedCents ?? 0), 0);
          return finish(batch, opts.json, summaryLine(batch, 'cancelled', refunded ? ` (${money(refunded)} refunded)` : ''));
        });
      });
    });
}

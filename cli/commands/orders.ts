import { Option, type Command } from 'commander';
import type { OrderView } from '../../src/domain/orders.js';
import { ORDER_STATUSES, type OrderStatus } from '../../src/domain/order-state.js';
import { orderDetail, orderTable, timelineTable } from '../format.js';
import { EXIT_OK, example, out, parseIntIn, printJson, runCommand, withRuntime, type Cli } from '../shared.js';

// The domain's page size limit (as on GET /orders); longer lists are fetched page by page.
const PAGE = 500;
const MAX_LIMIT = 100_000;

/** `orders list` and `orders show`. */
export function registerOrderCommands(program: Command, cli: Cli): void {
  const orders = program
    .command('orders')
    .description('Look at orders.')
    .addHelpText('after', example('order-up orders list --status charged', 'order-up orders show 8Jq2x0fN3kQ'));

  orders
    .command('list')
    .description('List orders, newest first.')
    .addOption(new Option('--status <status>', 'only orders with this status').choices(ORDER_STATUSES))
    .addOption(
      new Option('--limit <n>', `how many orders at most (1..${MAX_LIMIT})`).argParser(parseIntIn('--limit', 1, MAX_LIMIT)).default(100),
    )
    .option('--cursor <cursor>', 'continue after a previous list (its nextCursor)')
    .option('--json', 'print {"orders": [...], "nextCursor": ...} as JSON')
    .addHelpText(
      'after',
      example('order-up orders list --status pending --limit 20', "order-up orders list --status charged --json | jq -r '.orders[].id'"),
    )
    .action(async (opts: { status?: OrderStatus; limit: number; cursor?: string; json?: boolean }) => {
      await runCommand(cli, opts.json, async () => {
        const { listOrders } = await import('../../src/domain/orders.js');
        const page = await withRuntime(cli, async (rt) => {
          const ctx = rt.context();
          const found: OrderView[] = [];
          let cursor = opts.cursor;
          let nextCursor: string | null;
          do {
            const res = await listOrders(ctx, { status: opts.status, limit: Math.min(PAGE, opts.limit - found.length), cursor });
            found.push(...res.orders);
            nextCursor = res.nextCursor;
            cursor = res.nextCursor ?? undefined;
          } while (nextCursor && found.length < opts.limit);
          return { orders: found, nextCursor };
        });
        if (opts.json) {
          printJson(page);
        } else if (page.orders.length === 0) {
          out(opts.status ? `No ${opts.status} orders.` : 'No orders.');
        } else {
          out(orderTable(page.orders));
          const what = `${page.orders.length} order${page.orders.length === 1 ? '' : 's'}${opts.status ? ` ${opts.status}` : ''}`;
          out(page.nextCursor ? `\n${what} shown; more with: --cursor ${page.nextCursor}` : `\n${what}`);
        }
        return EXIT_OK;
      });
    });

  orders
    .command('show')
    .description('Show one order with its line items and its timeline (who did what, when).')
    .argument('<id>', 'the order ID (one that starts with "-" goes after "--", every option before it)')
    .option('--json', 'print {"order": ..., "events": [...]} as JSON')
    .addHelpText('after', example('order-up orders show 8Jq2x0fN3kQ', 'order-up orders show 8Jq2x0fN3kQ --json'))
    .action(async (id: string, opts: { json?: boolean }) => {
      await runCommand(cli, opts.json, async () => {
        const { getOrder } = await import('../../src/domain/orders.js');
        const { orderEvents } = await import('../../src/domain/timeline.js');
        const { order, events } = await withRuntime(cli, async (rt) => {
          const ctx = rt.context();
          const shown = await getOrder(ctx, id);
          // The whole timeline, a page at a time.
          const all = [];
          let cursor: string | undefined;
          do {
            const page = await orderEvents(ctx, id, { limit: 500, cursor });
            all.push(...page.events);
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
          return { order: shown, events: all };
        });
        if (opts.json) printJson({ order, events });
        else out(`${orderDetail(order)}\n\n${timelineTable(events)}`);
        return EXIT_OK;
      });
    });
}

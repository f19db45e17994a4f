import { Option, type Command } from 'commander';
import { money, paymentTable } from '../format.js';
import { EXIT_OK, UsageError, example, out, printJson, runCommand, withRuntime, type Cli } from '../shared.js';

/** `payments in-doubt` and `payments resolve`: the in-doubt procedure. */
export function registerPaymentCommands(program: Command, cli: Cli): void {
  const payments = program
    .command('payments')
    .description('Charges and refunds whose outcome is unknown (in doubt), and recording what really happened.')
    .addHelpText(
      'after',
      example('order-up payments in-doubt', 'order-up payments resolve 0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10 --succeeded'),
    );

  payments
    .command('in-doubt')
    .description('List charges and refunds whose outcome is unknown; their orders are blocked until resolved.')
    .option('--json', 'print {"payments": [{paymentId, orderId, kind, amountCents, startedAt, outcome}]} as JSON')
    .addHelpText('after', example('order-up payments in-doubt', "order-up payments in-doubt --json | jq -r '.payments[].paymentId'"))
    .action(async (opts: { json?: boolean }) => {
      await runCommand(cli, opts.json, async () => {
        const { listInDoubtPayments } = await import('../../src/domain/in-doubt.js');
        const list = await withRuntime(cli, (rt) => listInDoubtPayments(rt.context()));
        if (opts.json) {
          printJson({ payments: list });
        } else if (list.length === 0) {
          out('No payments in doubt.');
        } else {
          out(paymentTable(list));
          out(
            `\n${list.length} payment${list.length === 1 ? '' : 's'} in doubt. Ask the charge service whether each went through, then record it:\n` +
              '  order-up payments resolve <PAYMENT> --succeeded   (or --failed)',
          );
        }
        return EXIT_OK;
      });
    });

  payments
    .command('resolve')
    .description(
      'Record the outcome you confirmed with the charge service and move the order on: a charge that ' +
        'succeeded makes the order charged, a failed one leaves it pending; a refund that succeeded ' +
        'cancels the order, a failed one leaves it charged.',
    )
    .argument('<paymentId>', 'the payment ID from "payments in-doubt"')
    .addOption(new Option('--succeeded', 'the charge service did take the charge / make the refund').conflicts('failed'))
    .addOption(new Option('--failed', 'the charge service did not take the charge / make the refund').conflicts('succeeded'))
    .option('--json', 'print {"payment": ..., "order": ...} as JSON')
    .addHelpText(
      'after',
      example(
        '# the charge service confirms it took the money:',
        'order-up payments resolve 0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10 --succeeded',
        '# the charge service has no record of the refund:',
        'order-up payments resolve 5d1e2c3b-8a9f-4e6d-b7c0-1a2b3c4d5e6f --failed',
      ),
    )
    .action(async (paymentId: string, opts: { succeeded?: boolean; failed?: boolean; json?: boolean }) => {
      if (!opts.succeeded && !opts.failed)
        throw new UsageError('payments resolve needs --succeeded or --failed: what did the charge service say?');
      await runCommand(cli, opts.json, async () => {
        const { resolvePayment } = await import('../../src/domain/in-doubt.js');
        const res = await withRuntime(cli, (rt) => resolvePayment(rt.context(), paymentId, opts.succeeded === true));
        if (opts.json) {
          printJson(res);
        } else {
          const p = res.payment;
          out(
            `Payment ${p.paymentId} (${p.kind} of ${money(Math.abs(p.amountCents))}) recorded as ${p.state}.\n` +
              `Order ${res.order.id} is now ${res.order.status}.`,
          );
        }
        return EXIT_OK;
      });
    });
}

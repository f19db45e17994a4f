// The staff CLI's text output (cli/format.ts): money, times, tables, and user text that must not
// drive the terminal.
import { describe, expect, test } from '@jest/globals';
import { clean, money, orderDetail, orderTable, paymentTable, table, timelineTable, when } from '../../cli/format.js';
import type { OrderView } from '../../src/domain/orders.js';
import type { OrderEventView } from '../../src/domain/timeline.js';
import type { PaymentView } from '../../src/domain/in-doubt.js';

const ORDER: OrderView = {
  id: '8Jq2x0fN3kQ',
  customerEmail: 'ada@example.com',
  lineItems: [
    { description: 'Blue mug', priceCents: 1250, quantity: 2 },
    { description: 'Coupon', priceCents: -500, quantity: 1 },
  ],
  status: 'pending',
  totalCents: 2000,
  createdAt: '2026-11-25T10:00:00.000Z',
  updatedAt: '2026-11-25T10:00:00.000Z',
  chargedAt: null,
  fulfilledAt: null,
  cancelledAt: null,
  cancelReason: null,
  payment: null,
};

describe('money and when', () => {
  test('when cents are shown, then as dollars with two decimals, a thousands separator and the sign in front', () => {
    expect([money(1250), money(-1250), money(123456789), money(5), money(0), money(-5)]).toEqual([
      '$12.50',
      '-$12.50',
      '$1,234,567.89',
      '$0.05',
      '$0.00',
      '-$0.05',
    ]);
  });

  test('when a timestamp is shown, then in UTC to the second; a missing one as a dash', () => {
    expect(when('2026-11-25T10:31:02.345Z')).toBe('2026-11-25 10:31:02Z');
    expect(when(null)).toBe('-');
  });
});

describe('clean', () => {
  test('when user text holds control characters, then they are shown escaped and cannot reach the terminal', () => {
    expect(clean('Mug\u001b[31m red\r\nnext\u0000\u009b')).toBe('Mug\\u001b[31m red\\u000d\\u000anext\\u0000\\u009b');
  });

  test('when user text is printable (any script), then it is left as it is', () => {
    expect(clean('Tasse \u00e0 caf\u00e9 \u2615 \u6f22\u5b57')).toBe('Tasse \u00e0 caf\u00e9 \u2615 \u6f22\u5b57');
  });
});

describe('table', () => {
  test('when rows are tabled, then columns are aligned two spaces apart, numbers to the right, with no trailing spaces', () => {
    expect(
      table(
        ['NAME', 'AMOUNT', 'NOTE'],
        [
          ['a', '$1.00', ''],
          ['longer', '$100.00', 'x'],
        ],
        ['left', 'right', 'left'],
      ),
    ).toBe(['NAME     AMOUNT  NOTE', 'a         $1.00', 'longer  $100.00  x'].join('\n'));
  });

  test('when a cell holds control characters, then they are escaped there too', () => {
    expect(table(['A'], [['x\ty']])).toBe('A\nx\\u0009y');
  });
});

describe('orders', () => {
  test('when orders are listed, then one aligned line each with status, total, item count, customer and creation time', () => {
    expect(
      orderTable([ORDER, { ...ORDER, id: 'b3Xr9mT1pZa', status: 'charged', totalCents: 123456, lineItems: [ORDER.lineItems[0]] }]),
    ).toBe(
      [
        'ID           STATUS       TOTAL  ITEMS  CUSTOMER         CREATED',
        '8Jq2x0fN3kQ  pending     $20.00      2  ada@example.com  2026-11-25 10:00:00Z',
        'b3Xr9mT1pZa  charged  $1,234.56      1  ada@example.com  2026-11-25 10:00:00Z',
      ].join('\n'),
    );
  });

  test('when a pending order is shown, then its fields, then its line items with amounts, and no Refunded line', () => {
    expect(orderDetail(ORDER)).toBe(
      [
        'Order     8Jq2x0fN3kQ',
        'Status    pending',
        'Customer  ada@example.com',
        'Total     $20.00',
        'Created   2026-11-25 10:00:00Z',
        'Updated   2026-11-25 10:00:00Z',
        '',
        '  ITEM       PRICE  QTY  AMOUNT',
        '  Blue mug  $12.50    2  $25.00',
        '  Coupon    -$5.00    1  -$5.00',
      ].join('\n'),
    );
  });

  test('when a charged order was cancelled, then the times, the refund and the reason are shown', () => {
    const cancelled = {
      ...ORDER,
      status: 'cancelled' as const,
      chargedAt: '2026-11-25T10:01:00.000Z',
      cancelledAt: '2026-11-25T10:02:00.000Z',
      cancelReason: 'Customer\u001b asked',
    };
    expect(orderDetail(cancelled).split('\n\n')[0]).toBe(
      [
        'Order      8Jq2x0fN3kQ',
        'Status     cancelled',
        'Customer   ada@example.com',
        'Total      $20.00',
        'Created    2026-11-25 10:00:00Z',
        'Updated    2026-11-25 10:00:00Z',
        'Charged    2026-11-25 10:01:00Z',
        'Cancelled  2026-11-25 10:02:00Z',
        'Refunded   $20.00 (the whole total, to the card it was charged on)',
        'Reason     Customer\\u001b asked',
      ].join('\n'),
    );
    expect(orderDetail({ ...cancelled, chargedAt: null })).not.toContain('Refunded');
    expect(orderDetail({ ...cancelled, totalCents: 0 })).not.toContain('Refunded');
  });
});

describe('timeline and payments', () => {
  test("when an order's timeline is shown, then who did what when, the details in words and the amount where money moved", () => {
    const events: OrderEventView[] = [
      {
        seq: 1,
        at: '2026-11-25T10:00:00.000Z',
        type: 'order.created',
        actor: { kind: 'customer' },
        requestId: 'r1',
        data: { totalCents: 2000, lineItems: 2 },
      },
      {
        seq: 2,
        at: '2026-11-25T10:01:00.000Z',
        type: 'charge.in_doubt',
        actor: { kind: 'staff', name: 'ada' },
        requestId: null,
        data: { amountCents: 2000, outcome: 'no answer before the timeout' },
      },
      {
        seq: 3,
        at: '2026-11-25T10:02:00.000Z',
        type: 'order.cancelled',
        actor: { kind: 'cli', name: 'bob' },
        requestId: null,
        data: { reason: 'asked', refundedCents: 2000, note: '' },
      },
    ];
    expect(timelineTable(events)).toBe(
      [
        'Timeline',
        '  WHEN                  WHO        WHAT                                            AMOUNT',
        '  2026-11-25 10:00:00Z  customer   order.created                                   $20.00',
        '  2026-11-25 10:01:00Z  staff:ada  charge.in_doubt (no answer before the timeout)  $20.00',
        '  2026-11-25 10:02:00Z  cli:bob    order.cancelled (asked)                         $20.00',
      ].join('\n'),
    );
  });

  test('when payments in doubt are listed, then a refund shows as a negative amount and a missing outcome as a dash', () => {
    const payments: PaymentView[] = [
      {
        paymentId: 'p-1',
        orderId: '8Jq2x0fN3kQ',
        kind: 'refund',
        amountCents: -2000,
        startedAt: '2026-11-25T10:01:00.000Z',
        outcome: null,
      },
    ];
    expect(paymentTable(payments)).toBe(
      [
        'PAYMENT  ORDER        KIND     AMOUNT  STARTED               WHAT HAPPENED',
        'p-1      8Jq2x0fN3kQ  refund  -$20.00  2026-11-25 10:01:00Z  -',
      ].join('\n'),
    );
  });
});

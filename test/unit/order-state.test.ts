// The order life cycle (src/domain/order-state.ts): one table, read by the claims, enter(), the
// cancel's refund decision and the in-doubt procedure.
import { describe, expect, test } from '@jest/globals';
import {
  ORDER_STATUSES,
  enter,
  paymentOf,
  paymentStep,
  plan,
  statusesThatProceed,
  type Operation,
  type OrderStatus,
} from '../../src/domain/order-state.js';

const OPERATIONS: Operation[] = ['charge', 'cancel', 'fulfill'];

// What each operation means for each status, as docs/staff-cli.md and the spec describe it:
// `-> status` proceeds, `done` answers success again, anything else is the refusal's code.
const EXPECTED: Record<Operation, Record<OrderStatus, string>> = {
  charge: { pending: '-> charged', charged: 'order_not_pending', fulfilled: 'order_not_pending', cancelled: 'order_not_pending' },
  cancel: { pending: '-> cancelled', charged: '-> cancelled', fulfilled: 'order_fulfilled', cancelled: 'done' },
  fulfill: { pending: 'order_not_charged', charged: '-> fulfilled', fulfilled: 'done', cancelled: 'order_cancelled' },
};

function order(status: OrderStatus) {
  const t0 = new Date('2026-11-25T10:00:00.000Z');
  return { status, updatedAt: t0, chargedAt: null as Date | null, fulfilledAt: null as Date | null, cancelledAt: null as Date | null };
}

describe('plan', () => {
  for (const operation of OPERATIONS) {
    for (const status of ORDER_STATUSES) {
      test(`when a ${operation} meets a ${status} order, then the answer is ${EXPECTED[operation][status]}`, () => {
        const p = plan(operation, status);
        const summary = p.kind === 'proceed' ? `-> ${p.to}` : p.kind === 'already_done' ? 'done' : p.code;
        expect(summary).toBe(EXPECTED[operation][status]);
      });
    }
  }

  test('when an operation is refused, then the refusal says why in a sentence', () => {
    for (const operation of OPERATIONS) {
      for (const status of ORDER_STATUSES) {
        const p = plan(operation, status);
        if (p.kind === 'refuse') expect(p.detail).toMatch(/^The order .+\.$/);
      }
    }
  });
});

describe('statusesThatProceed', () => {
  test('when a claim asks which statuses an operation acts on, then only the ones the table proceeds from', () => {
    expect(statusesThatProceed('charge')).toEqual(['pending']);
    expect(statusesThatProceed('cancel')).toEqual(['pending', 'charged']);
    expect(statusesThatProceed('fulfill')).toEqual(['charged']);
  });

  test('when an order is fulfilled or cancelled, then no operation moves it any more', () => {
    for (const operation of OPERATIONS) {
      expect(statusesThatProceed(operation)).not.toContain('fulfilled');
      expect(statusesThatProceed(operation)).not.toContain('cancelled');
    }
  });
});

describe('payments in the life cycle', () => {
  test('when a pending order is cancelled, then no refund is made; when a charged one is, then a refund', () => {
    expect(paymentOf('cancel', 'pending')).toBeUndefined();
    expect(paymentOf('cancel', 'charged')).toBe('refund');
    expect(paymentOf('charge', 'pending')).toBe('charge');
    expect(paymentOf('fulfill', 'charged')).toBeUndefined();
  });

  test('when staff resolve an in-doubt payment, then a charge is from pending to charged and a refund from charged to cancelled', () => {
    expect(paymentStep('charge')).toEqual({ from: 'pending', to: 'charged' });
    expect(paymentStep('refund')).toEqual({ from: 'charged', to: 'cancelled' });
  });
});

describe('enter', () => {
  test('when an order moves along the life cycle, then its status changes and the matching time is stamped', () => {
    const now = new Date('2026-11-25T10:05:00.000Z');
    const charged = enter(order('pending'), 'charged', now);
    expect(charged).toMatchObject({ status: 'charged', updatedAt: now, chargedAt: now, fulfilledAt: null, cancelledAt: null });
    expect(enter(order('charged'), 'fulfilled', now)).toMatchObject({ status: 'fulfilled', fulfilledAt: now, chargedAt: null });
    expect(enter(order('charged'), 'cancelled', now)).toMatchObject({ status: 'cancelled', cancelledAt: now });
    expect(enter(order('pending'), 'cancelled', now)).toMatchObject({ status: 'cancelled', cancelledAt: now });
  });

  test('when a move is not in the life cycle, then it is refused and the order is left as it was', () => {
    const illegal: [OrderStatus, OrderStatus][] = [
      ['pending', 'fulfilled'],
      ['pending', 'pending'],
      ['charged', 'pending'],
      ['charged', 'charged'],
      ['fulfilled', 'cancelled'],
      ['cancelled', 'charged'],
      ['cancelled', 'pending'],
    ];
    for (const [from, to] of illegal) {
      const o = order(from);
      expect(() => enter(o, to)).toThrow(`illegal transition ${from} -> ${to}`);
      expect(o).toEqual(order(from));
    }
  });
});

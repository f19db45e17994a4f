import type { OrderEventView } from '../src/domain/timeline.js';
import type { OrderView } from '../src/domain/orders.js';
import type { PaymentView } from '../src/domain/in-doubt.js';

/** Integer cents as money: 1250 -> "$12.50", -1250 -> "-$12.50", 123456789 -> "$1,234,567.89". */
export function money(cents: number): string {
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toLocaleString('en-US');
  const rest = String(abs % 100).padStart(2, '0');
  return `${cents < 0 ? '-' : ''}$${dollars}.${rest}`;
}

/** An RFC 3339 timestamp as "2026-11-25 10:31:02Z" (UTC, to the second). */
export function when(iso: string | null): string {
  if (!iso) return '-';
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

/** Text from users (descriptions, reasons) must not drive the terminal: control characters are shown escaped. */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export type Align = 'left' | 'right';

/** An aligned text table: a header row, then one row per entry; columns separated by two spaces. */
export function table(headers: string[], rows: string[][], align: Align[] = []): string {
  const cells = [headers, ...rows].map((r) => r.map(clean));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (align[i] === 'right' ? c.padStart(widths[i]) : i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function orderTable(orders: OrderView[]): string {
  return table(
    ['ID', 'STATUS', 'TOTAL', 'ITEMS', 'CUSTOMER', 'CREATED'],
    orders.map((o) => [o.id, o.status, money(o.totalCents), String(o.lineItems.length), o.customerEmail, when(o.createdAt)]),
    ['left', 'left', 'right', 'right', 'left', 'left'],
  );
}

/** One order in full: a block of fields, then its line items. */
export function orderDetail(o: OrderView): string {
  const fields: [string, string][] = [
    ['Order', o.id],
    ['Status', o.status],
    ['Customer', o.customerEmail],
    ['Total', money(o.totalCents)],
    ['Created', when(o.createdAt)],
    ['Updated', when(o.updatedAt)],
  ];
  if (o.chargedAt) fields.push(['Charged', when(o.chargedAt)]);
  if (o.fulfilledAt) fields.push(['Fulfilled', when(o.fulfilledAt)]);
  if (o.cancelledAt) fields.push(['Cancelled', when(o.cancelledAt)]);
  // A charged order is cancelled only once its whole total was refunded (a zero total needs no refund).
  if (o.status === 'cancelled' && o.chargedAt && o.totalCents > 0)
    fields.push(['Refunded', `${money(o.totalCents)} (the whole total, to the card it was charged on)`]);
  if (o.cancelReason) fields.push(['Reason', o.cancelReason]);
  const width = Math.max(...fields.map(([k]) => k.length));
  const head = fields.map(([k, v]) => `${k.padEnd(width)}  ${clean(v)}`).join('\n');
  const items = table(
    ['ITEM', 'PRICE', 'QTY', 'AMOUNT'],
    o.lineItems.map((li) => [li.description, money(li.priceCents), String(li.quantity), money(li.priceCents * li.quantity)]),
    ['left', 'right', 'right', 'right'],
  );
  return `${head}\n\n${items
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}

/** The order's timeline under it: when, who, what, and the amount where money was involved. */
export function timelineTable(events: OrderEventView[]): string {
  const who = (e: OrderEventView) => (e.actor.name ? `${e.actor.kind}:${e.actor.name}` : e.actor.kind);
  const amount = (e: OrderEventView) => {
    const cents = e.data.amountCents ?? e.data.refundedCents ?? e.data.totalCents;
    return typeof cents === 'number' ? money(cents) : '';
  };
  const what = (e: OrderEventView) => {
    const d = e.data;
    const detail = [d.description, d.outcome, d.reason, d.note].filter((v) => typeof v === 'string' && v !== '').join('; ');
    return detail ? `${e.type} (${detail})` : e.type;
  };
  const rows = table(
    ['WHEN', 'WHO', 'WHAT', 'AMOUNT'],
    events.map((e) => [when(e.at), who(e), what(e), amount(e)]),
    ['left', 'left', 'left', 'right'],
  );
  return `Timeline
${rows
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}`;
}

export function paymentTable(payments: PaymentView[]): string {
  return table(
    ['PAYMENT', 'ORDER', 'KIND', 'AMOUNT', 'STARTED', 'WHAT HAPPENED'],
    payments.map((p) => [p.paymentId, p.orderId, p.kind, money(p.amountCents), when(p.startedAt), p.outcome ?? '-']),
    ['left', 'left', 'left', 'right', 'left', 'left'],
  );
}

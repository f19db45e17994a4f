import type { TestApp } from './app.js';

/** What is stored, read straight from the database: tests check state, not just responses. */
export async function storedOrder(app: Pick<TestApp, 'db'>, id: string) {
  const rows = await app.db.execute<Record<string, unknown>[]>(
    'select status, total_cents, operation, charged_at, fulfilled_at, cancelled_at, cancel_reason from orders where id = ?',
    [id],
  );
  return rows[0] as
    | {
        status: string;
        total_cents: string;
        operation: string | null;
        charged_at: Date | null;
        fulfilled_at: Date | null;
        cancelled_at: Date | null;
        cancel_reason: string | null;
      }
    | undefined;
}

export async function storedPayments(app: Pick<TestApp, 'db'>, orderId: string) {
  return app.db.execute<{ id: string; kind: string; amount_cents: string; card_token: string; state: string; outcome: string | null }[]>(
    'select id, kind, amount_cents, card_token, state, outcome from payments where order_id = ? order by created_at',
    [orderId],
  );
}

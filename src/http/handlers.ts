import { readFileSync } from 'node:fs';
import type { Context } from 'openapi-backend';
import type { HandlerArgs } from './app.js';
import { createOrder, getOrder, listOrders, type NewOrderInput } from '../domain/orders.js';
import type { OrderStatus } from '../domain/order-state.js';
import { AppError, reconnecting } from '../domain/errors.js';
import { chargeOrder } from '../domain/charge.js';
import { cancelOrder } from '../domain/cancel.js';
import { fulfillOrder } from '../domain/fulfill.js';
import type { components } from '../generated/order-up.js';
import { DOCS_HTML, SPEC_PATH } from './assets.js';

type Handler = (c: Context, args: HandlerArgs) => Promise<void> | void;
// Response bodies are checked against the types generated from the spec: drift fails `tsc`.
type Schemas = components['schemas'];

const specText = readFileSync(SPEC_PATH, 'utf8');

/** One handler per operationId of openapi/order-up.yaml; each reads like the feature it serves. */
export const handlers: Record<string, Handler> = {
  getHealth: (_c, { res }) => {
    res.json({ status: 'ok' });
  },

  getReady: async (_c, { deps, res }) => {
    // Without its lease this process takes no new work (see db/process-lease.ts): not ready either.
    if (!deps.services.lease.held) throw reconnecting('not ready for traffic until it has a new lease.');
    try {
      await withTimeout(deps.db.ping(), 2000);
    } catch {
      throw new AppError('not_ready', 'The database cannot be reached.', { retryAfterSeconds: 5 });
    }
    res.json({ status: 'ok' });
  },

  getOpenApi: (_c, { res }) => {
    res.type('application/yaml').send(specText);
  },

  getDocs: (_c, { res }) => {
    res.type('text/html').send(DOCS_HTML);
  },

  createOrder: async (c, { ctx, res }) => {
    const order = await createOrder(ctx, c.request.requestBody as NewOrderInput);
    res.status(201).location(`/orders/${encodeURIComponent(order.id)}`).json({ order } satisfies Schemas['OrderEnvelope']);
  },

  getOrder: async (c, { ctx, res }) => {
    res.json({ order: await getOrder(ctx, String(c.request.params.id)) } satisfies Schemas['OrderEnvelope']);
  },

  chargeOrder: async (c, { ctx, res }) => {
    const body = c.request.requestBody as Schemas['ChargeRequest'];
    res.json((await chargeOrder(ctx, String(c.request.params.id), body.cardToken)) satisfies Schemas['ChargeResult']);
  },

  cancelOrder: async (c, { ctx, res }) => {
    const body = (c.request.requestBody ?? {}) as Schemas['CancelRequest'];
    res.json((await cancelOrder(ctx, String(c.request.params.id), body.reason)) satisfies Schemas['CancelResult']);
  },

  fulfillOrder: async (c, { ctx, res }) => {
    res.json((await fulfillOrder(ctx, String(c.request.params.id))) satisfies Schemas['OrderEnvelope']);
  },

  listOrders: async (c, { ctx, res }) => {
    const q = c.request.query as { status?: OrderStatus; limit?: number | string; cursor?: string };
    const page = await listOrders(ctx, { status: q.status, limit: q.limit === undefined ? undefined : Number(q.limit), cursor: q.cursor });
    res.json(page satisfies Schemas['OrderPage']);
  },
};

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]);
}

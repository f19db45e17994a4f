import { readFileSync } from 'node:fs';
import type { ApiRequest, Handler, HandlerArgs } from './deps.js';
import type { Answer } from '../domain/idempotency.js';
import { createOrder, getOrder, listOrders, type NewOrderInput } from '../domain/orders.js';
import type { OrderStatus } from '../domain/order-state.js';
import { AppError, reconnecting } from '../domain/errors.js';
import { chargeOrder } from '../domain/charge.js';
import { cancelOrder } from '../domain/cancel.js';
import { fulfillOrder } from '../domain/fulfill.js';
import { orderEvents } from '../domain/timeline.js';
import { listPayments, resolvePaymentItem } from '../domain/in-doubt.js';
import type { components } from '../generated/order-up.js';
import { within } from '../timeout.js';
import { DOCS_HTML, SPEC_PATH } from './assets.js';

// Response bodies are checked against the types generated from the spec: drift fails `tsc`.
type Schemas = components['schemas'];

const specText = readFileSync(SPEC_PATH, 'utf8');

/** An operation that takes an Idempotency-Key: what it does, and how its result is answered (also stored with the key). */
export interface KeyedOperation {
  run(request: ApiRequest, args: HandlerArgs): Promise<unknown>;
  present(result: unknown): Answer;
  /** The operation takes the key in its own statement (domain/orders.ts createOrder): no separate take. */
  takesKeyItself?: boolean;
}

/** Types one operation's run and present together. */
const keyed = <R>(op: { run(request: ApiRequest, args: HandlerArgs): Promise<R>; present(result: R): Answer; takesKeyItself?: boolean }) =>
  op as KeyedOperation;

/** The operations whose spec declares the Idempotency-Key header (app.ts checks that the two agree). */
export const keyedOperations: Record<string, KeyedOperation> = {
  createOrder: keyed({
    takesKeyItself: true,
    run: (r, { ctx }) => createOrder(ctx, r.body as NewOrderInput),
    present: (order) => ({
      status: 201,
      location: `/orders/${encodeURIComponent(order.id)}`,
      body: { order } satisfies Schemas['OrderEnvelope'],
    }),
  }),
  chargeOrder: keyed({
    run: (r, { ctx }) => chargeOrder(ctx, r.params.id, (r.body as Schemas['ChargeRequest']).cardToken),
    present: (result) => ({ status: 200, body: result satisfies Schemas['ChargeResult'] }),
  }),
  cancelOrder: keyed({
    run: (r, { ctx }) => cancelOrder(ctx, r.params.id, ((r.body ?? {}) as Schemas['CancelRequest']).reason),
    present: (result) => ({ status: 200, body: result satisfies Schemas['CancelResult'] }),
  }),
  fulfillOrder: keyed({
    run: (r, { ctx }) => fulfillOrder(ctx, r.params.id),
    present: (result) => ({ status: 200, body: result satisfies Schemas['OrderEnvelope'] }),
  }),
};

/** A keyed operation run without a key. */
const answered =
  (op: KeyedOperation): Handler =>
  async (r, args) =>
    op.present(await op.run(r, args));

/**
 * One handler per operationId of openapi/order-up.yaml; each reads like the feature it serves and
 * returns its answer (app.ts sends it, and keeps it for an Idempotency-Key). The two that are not
 * JSON write their answer themselves.
 */
export const handlers: Record<string, Handler> = {
  getRoot: (_r, { req, res }) => {
    // A browser is sent to the reference; a client that asks for JSON is told where things are.
    res.setHeader('Vary', 'Accept');
    if (req.accepts(['text/html', 'application/json']) === 'application/json') {
      return { status: 200, body: { docs: '/docs', openapi: '/openapi.yaml' } satisfies Schemas['RootLinks'] };
    }
    res.status(302).location('/docs').end();
  },

  getHealth: () => ({ status: 200, body: { status: 'ok' } }),

  getReady: async (_r, { deps }) => {
    // Without its lease this process takes no new work (see db/process-lease.ts): not ready either.
    if (!deps.services.lease.held) throw reconnecting('not ready for traffic until it has a new lease.');
    // Answered within 2 s, or the database counts as unreachable.
    const answered = await within(
      deps.db.ping().then(
        () => true,
        () => false,
      ),
      2000,
    );
    if (answered !== true) throw new AppError('not_ready', 'The database cannot be reached.', { retryAfterSeconds: 5 });
    return { status: 200, body: { status: 'ok' } };
  },

  getOpenApi: (_r, { res }) => {
    res.type('application/yaml').send(specText);
  },

  getDocs: (_r, { res }) => {
    res.type('text/html').send(DOCS_HTML);
  },

  getMetrics: async (_r, { deps, res }) => {
    const text = await deps.metrics.text();
    res.statusCode = 200;
    res.setHeader('Content-Type', deps.metrics.contentType);
    res.end(text);
  },

  createOrder: answered(keyedOperations.createOrder),

  getOrder: async (r, { ctx }) => ({ status: 200, body: { order: await getOrder(ctx, r.params.id) } satisfies Schemas['OrderEnvelope'] }),

  chargeOrder: answered(keyedOperations.chargeOrder),
  cancelOrder: answered(keyedOperations.cancelOrder),
  fulfillOrder: answered(keyedOperations.fulfillOrder),

  listOrderEvents: async (r, { ctx }) => {
    const q = r.query as { limit?: number | string; cursor?: string };
    const page = await orderEvents(ctx, r.params.id, { limit: q.limit === undefined ? undefined : Number(q.limit), cursor: q.cursor });
    return { status: 200, body: page satisfies Schemas['EventPage'] };
  },

  listPayments: async (r, { ctx }) => {
    const q = r.query as { status?: Schemas['Payment']['status']; limit?: number | string; cursor?: string };
    const page = await listPayments(ctx, {
      status: q.status,
      limit: q.limit === undefined ? undefined : Number(q.limit),
      cursor: q.cursor,
    });
    return { status: 200, body: page satisfies Schemas['PaymentPage'] };
  },

  resolvePayment: async (r, { ctx }) => {
    const body = r.body as Schemas['ResolveRequest'];
    return {
      status: 200,
      body: (await resolvePaymentItem(ctx, r.params.paymentId, body.outcome, body.note)) satisfies Schemas['ResolveResult'],
    };
  },

  listOrders: async (r, { ctx }) => {
    const q = r.query as { status?: OrderStatus; limit?: number | string; cursor?: string };
    const page = await listOrders(ctx, { status: q.status, limit: q.limit === undefined ? undefined : Number(q.limit), cursor: q.cursor });
    return { status: 200, body: page satisfies Schemas['OrderPage'] };
  },
};

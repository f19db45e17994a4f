// Request-path baseline "lean": order-up's stack without order-up - express 5, openapi-backend
// routing and validating against openapi/order-up.yaml (configured by src/http/spec.ts, as the app), pino
// writing one line per request, and one prepared pg statement per operation. What order-up costs
// beyond this is its own doing (MikroORM, request ids, intake, its checks). Started by
// request-path.ts; prints `listening on <url>` on stdout. Env: DATABASE_URL, STAFF_TOKEN.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Context } from 'openapi-backend';
import { pino } from 'pino';
import { specBackend } from '../../src/http/spec.js';
import { CREATE_ORDER, GET_ORDER, LIST_ORDERS, createOrderValues, type NewOrderBody } from './order-statements.js';
import { announce, createPool, exitWithParent } from './server-common.js';

// Built into dist/test/bench/: the repository root is three levels up.
const SPEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../openapi/order-up.yaml');
const pool = createPool();
const staffAuthorization = `Bearer ${process.env.STAFF_TOKEN}`;
// Asynchronous, to stderr (which the benchmark points at a file).
const log = pino({ name: 'lean', level: 'info' }, pino.destination({ dest: 2, sync: false }));

async function one(statement: { name: string; text: string }, values: unknown[]): Promise<unknown> {
  const { rows } = await pool.query<{ body: unknown }>({ ...statement, values });
  return rows[0]?.body;
}

const api = specBackend(SPEC);
await api.init();
// The same fix of the stack as in src/http/app.ts (openapi-backend rebuilds its list of operations
// twice per request): without it this baseline would pay a cost order-up no longer pays.
const operations = api.router.getOperations();
api.router.getOperations = () => operations;

api.registerSecurityHandler('staffToken', (c: Context) => c.request.headers.authorization === staffAuthorization);
api.register({
  getOrder: async (c: Context, _req: Request, res: Response) => {
    const body = await one(GET_ORDER, [c.request.params.id]);
    if (body) res.json(body);
    else res.status(404).json({ code: 'order_not_found' });
  },
  createOrder: async (c: Context, _req: Request, res: Response) => {
    const id = randomBytes(16).toString('base64url');
    res
      .status(201)
      .location(`/orders/${id}`)
      .json(await one(CREATE_ORDER, createOrderValues(id, c.request.requestBody as NewOrderBody)));
  },
  listOrders: async (c: Context, _req: Request, res: Response) => {
    res.json(await one(LIST_ORDERS, [Number(c.request.query.limit ?? 100)]));
  },
  validationFail: (c: Context, _req: Request, res: Response) =>
    res.status(400).json({ code: 'invalid_request', errors: c.validation.errors }),
  unauthorizedHandler: (_c: Context, _req: Request, res: Response) => res.status(401).json({ code: 'unauthorized' }),
  notFound: (_c: Context, _req: Request, res: Response) => res.status(404).json({ code: 'not_found' }),
  notImplemented: (_c: Context, _req: Request, res: Response) => res.status(501).json({ code: 'not_implemented' }),
});

const app = express();
app.disable('x-powered-by');
app.set('query parser', 'simple');
app.set('etag', false);
app.use((req: Request, res: Response, next: NextFunction) => {
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
  });
  next();
});
app.use(express.json({ limit: '1mb' }));
app.use((req: Request, res: Response) =>
  api.handleRequest(
    {
      method: req.method,
      path: req.path,
      query: req.query as Record<string, string>,
      headers: req.headers as Record<string, string>,
      body: req.body,
    },
    req,
    res,
  ),
);
app.use((err: { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
  if (!err.status) log.error({ err }, 'request failed');
  res.status(err.status ?? 500).json({ code: err.status ? 'invalid_request' : 'internal_error' });
});

const server = app.listen(0, '127.0.0.1', () => announce((server.address() as AddressInfo).port));
server.keepAliveTimeout = 5000; // as order-up's server
exitWithParent();

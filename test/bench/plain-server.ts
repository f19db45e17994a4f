// Request-path baseline "plain": the least a server can do for the three benchmarked operations on
// order-up's tables - node:http, hand routing, one prepared statement per request, and the JSON that
// PostgreSQL built written out as it arrives (never parsed). No validation beyond what keeps it from
// crashing, no logging. Started by request-path.ts; prints `listening on <url>` on stdout.
// Env: DATABASE_URL, STAFF_TOKEN.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CREATE_ORDER, GET_ORDER, LIST_ORDERS, createOrderValues, type NewOrderBody } from './order-statements.js';
import { announce, createPool, exitWithParent } from './server-common.js';

const pool = createPool();
const staffAuthorization = `Bearer ${process.env.STAFF_TOKEN}`;
const ORDER_PATH = /^\/orders\/([A-Za-z0-9_-]{1,64})$/;
// The `body` column arrives as the JSON text PostgreSQL wrote, not as an object.
const asText = { getTypeParser: () => (value: string) => value };

async function one(statement: { name: string; text: string }, values: unknown[]): Promise<string | undefined> {
  const { rows } = await pool.query<{ body: string }>({ ...statement, values, types: asText });
  return rows[0]?.body;
}

function send(res: http.ServerResponse, status: number, json: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  const byId = ORDER_PATH.exec(path);
  if (req.method === 'GET' && byId) {
    const body = await one(GET_ORDER, [byId[1]]);
    return body ? send(res, 200, body) : send(res, 404, '{"code":"order_not_found"}');
  }
  if (req.method === 'POST' && path === '/orders') {
    let order: NewOrderBody;
    try {
      order = JSON.parse(await readBody(req)) as NewOrderBody;
      if (typeof order.customerEmail !== 'string' || !Array.isArray(order.lineItems) || order.lineItems.length === 0)
        throw new Error('shape');
    } catch {
      return send(res, 400, '{"code":"invalid_request"}');
    }
    const id = randomBytes(16).toString('base64url');
    return send(res, 201, (await one(CREATE_ORDER, createOrderValues(id, order)))!, { location: `/orders/${id}` });
  }
  if (req.method === 'GET' && path === '/orders') {
    if (req.headers.authorization !== staffAuthorization) return send(res, 401, '{"code":"unauthorized"}');
    const limit = Number(new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1)).get('limit') ?? 100);
    return send(res, 200, (await one(LIST_ORDERS, [limit]))!);
  }
  send(res, 404, '{"code":"not_found"}');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    process.stderr.write(`plain: ${String(err)}\n`);
    if (!res.headersSent) send(res, 500, '{"code":"internal_error"}');
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000; // as order-up's server
server.listen(0, '127.0.0.1', () => announce((server.address() as AddressInfo).port));
exitWithParent();

import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { UNMATCHED_ROUTE, type Metrics } from '../metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The status logged for a request whose connection closed before its answer was sent (nginx's "client closed request"). */
export const CLIENT_CLOSED_STATUS = 499;

/** What the request's middlewares and handler share through res.locals. */
export interface RequestLocals {
  requestId: string;
  /** The log of this request (a child with its reqId), made on first use: most requests only need the access line. */
  log: Logger;
  /** The staff token's holder, on a staff endpoint. */
  staff?: string;
  /** The spec's path template of the operation the request was routed to (app.ts), for the metrics; unset: none. */
  route?: string;
}

/** The request a connection is carrying right now (until its answer is sent), for server.ts's clientError handler. */
interface Current {
  requestId: string;
  /** Set when the server ends the request itself (a request timeout): the status its access line shows. */
  closedWith?: number;
}

const current = new WeakMap<Socket, Current>();

/** The id of the request in progress on `socket`, if any; `closedWith` is the status to log when the server cuts it off. */
export function requestOnSocket(socket: Socket, closedWith?: number): string | undefined {
  const c = current.get(socket);
  if (c && closedWith !== undefined) c.closedWith = closedWith;
  return c?.requestId;
}

/**
 * Gives each request its id (the client's own X-Request-Id when it is a sane one, else a new
 * UUID), answers it in X-Request-Id, and writes exactly one access-log line per request: when the
 * answer is sent, or - when the connection closes first (the client gave up, or the server cut a
 * request that took too long to arrive) - at the close, with status 499 or the server's own (408).
 * It also observes http_request_duration_seconds (labelled with the route's template, never the raw path).
 */
export function requestLog(
  log: Logger,
  metrics: Pick<Metrics, 'observeRequest'>,
): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    let child: Logger | undefined;
    const locals = res.locals as RequestLocals;
    locals.requestId = requestId;
    Object.defineProperty(locals, 'log', { get: () => (child ??= log.child({ reqId: requestId, staff: locals.staff })), enumerable: true });
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const mine: Current = { requestId };
    current.set(socket, mine);
    let logged = false;
    const line = (status: number, aborted: boolean) => {
      if (logged) return;
      logged = true;
      if (current.get(socket) === mine) current.delete(socket);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.observeRequest(req.method, locals.route ?? UNMATCHED_ROUTE, status, ms / 1000);
      const fields = { reqId: requestId, method: req.method, path: req.path, status, ms: Math.round(ms * 10) / 10, staff: locals.staff };
      log.info(aborted ? { ...fields, aborted: true } : fields, 'request');
    };
    res.once('finish', () => line(res.statusCode, false));
    res.once('close', () => line(mine.closedWith ?? CLIENT_CLOSED_STATUS, true));
    next();
  };
}

import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { UNMATCHED_ROUTE, type Metrics } from '../metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

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

/**
 * Gives each request its id (the client's own X-Request-Id when it is a sane one, else a new
 * UUID), answers it in X-Request-Id, and when the answer is sent writes one access-log line and
 * observes http_request_duration_seconds (labelled with the route's template, never the raw path).
 */
export function requestLog(log: Logger, metrics: Pick<Metrics, 'observeRequest'>): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    let child: Logger | undefined;
    const locals = res.locals as RequestLocals;
    locals.requestId = requestId;
    Object.defineProperty(locals, 'log', { get: () => (child ??= log.child({ reqId: requestId, staff: locals.staff })), enumerable: true });
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.observeRequest(req.method, locals.route ?? UNMATCHED_ROUTE, res.statusCode, ms / 1000);
      log.info({ reqId: requestId, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10, staff: locals.staff }, 'request');
    });
    next();
  };
}

import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../domain/errors.js';
import { sendProblem } from './problem.js';

/** The probes: answered at once, never queued nor counted (a load balancer must hear them under load). */
const PROBES = new Set(['/healthz', '/healthz/', '/readyz', '/readyz/']);

const isProbe = (req: Request) => (req.method === 'GET' || req.method === 'HEAD') && PROBES.has(req.path);

/**
 * The way in for every request, before any work is done for it:
 *
 * - `/healthz` and `/readyz` go straight on: they neither wait in the queue below nor count.
 * - At most `maxInFlight` other requests are in progress (from arrival until their answer is sent
 *   or their connection closes); one more is answered `503 overloaded` with `Retry-After` at once,
 *   and nothing is done for it.
 * - The rest are started one per turn of the event loop. Node runs the handlers of every request
 *   that arrived together before it looks at any other I/O again, so under a burst (300 charges at
 *   once in `make bench`) the database result of the first claim, and the charge service's
 *   answers, waited behind tens of milliseconds of parsing and validating the newcomers. Here each
 *   newcomer is started on its own turn, after the completions of work already under way: in
 *   `make bench` the first charge call went out after ~35 ms instead of 70-185 ms. Requests still
 *   start in arrival order.
 */
export function intake(opts: { maxInFlight: number }): (req: Request, res: Response, next: NextFunction) => void {
  const waiting: { next: NextFunction; closed: boolean }[] = [];
  let scheduled = false;
  let inFlight = 0;
  const startNext = () => {
    try {
      const first = waiting.shift();
      // A request whose connection closed while it waited (the client gave up) is not started.
      if (first && !first.closed) first.next();
    } finally {
      // Whatever that request did, the ones behind it are still started.
      scheduled = waiting.length > 0;
      if (scheduled) setImmediate(startNext);
    }
  };
  return (req, res, next) => {
    if (isProbe(req)) return next();
    if (inFlight >= opts.maxInFlight) {
      sendProblem(
        res,
        new AppError('overloaded', 'Too many requests are in progress on this server; nothing was done. Try again in a moment.', {
          retryAfterSeconds: 1,
        }),
      );
      return;
    }
    inFlight += 1;
    const entry = { next, closed: false };
    // 'close' comes once for every response: after it is sent, or when its connection goes first.
    res.once('close', () => {
      inFlight -= 1;
      entry.closed = true;
    });
    waiting.push(entry);
    if (!scheduled) {
      scheduled = true;
      setImmediate(startNext);
    }
  };
}

import corsMiddleware from 'cors';
import type { NextFunction, Request, Response } from 'express';

/**
 * CORS for the listed origins only; with CORS_ORIGINS unset no CORS header is ever sent. Listed
 * origins are compared as browsers send them (`scheme://host[:port]`, lower case, no trailing
 * slash), so `https://Shop.example/` in CORS_ORIGINS still matches. Preflights of a listed origin
 * are answered here, before routing (the spec has no OPTIONS operations). Every response says
 * `Vary: Origin` while CORS is on, so a shared cache never serves one origin's answer to another.
 */
export function cors(origins: string[]): (req: Request, res: Response, next: NextFunction) => void {
  const allowed = new Set(origins.map(normalizeOrigin));
  const handle = corsMiddleware({
    origin: (origin, done) => done(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
    exposedHeaders: ['Location', 'X-Request-Id', 'Retry-After', 'Idempotent-Replayed'],
    maxAge: 600,
    optionsSuccessStatus: 204,
  });
  return (req, res, next) => {
    res.vary('Origin');
    handle(req, res, next);
  };
}

function normalizeOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? origin : url.origin;
  } catch {
    return origin;
  }
}

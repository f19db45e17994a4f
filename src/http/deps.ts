import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DomainContext, Services } from '../domain/context.js';
import type { Answer } from '../domain/idempotency.js';

/** What the HTTP layer needs of the process (the composition root, src/runtime.ts, hands it its Runtime). */
export interface HttpDeps {
  db: DomainContext['db'];
  config: Config;
  log: Logger;
  services: Services;
  metrics: Metrics;
}

/** A request as the spec sees it, once routed and validated. */
export interface ApiRequest {
  operationId: string;
  /** Path parameters, decoded. */
  params: Record<string, string>;
  query: Record<string, string | string[] | undefined>;
  headers: Request['headers'];
  body: unknown;
}

/** What a handler gets: the domain context for this request plus the express pair to answer on. */
export interface HandlerArgs {
  ctx: DomainContext;
  deps: HttpDeps;
  req: Request;
  res: Response;
}

/** A JSON answer to send, or nothing when the handler answered itself (the spec, the docs page). */
export type Handler = (request: ApiRequest, args: HandlerArgs) => Promise<Answer | void> | Answer | void;

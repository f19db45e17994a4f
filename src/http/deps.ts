import type { Request, Response } from 'express';
import type { Runtime } from '../runtime.js';
import type { DomainContext } from '../domain/context.js';
import type { Answer } from '../domain/idempotency.js';

/** What the HTTP layer needs of the process. */
export type HttpDeps = Pick<Runtime, 'db' | 'config' | 'log' | 'context' | 'services' | 'metrics'>;

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

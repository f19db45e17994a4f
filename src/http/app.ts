import express, { type NextFunction, type Request, type Response } from 'express';
import type { OpenAPIBackend, Operation } from 'openapi-backend';
import { AppError } from '../domain/errors.js';
import type { DomainContext } from '../domain/context.js';
import { specBackend } from './spec.js';
import { sendProblem } from './problem.js';
import { docsAssetPath, SPEC_PATH } from './assets.js';
import { handlers, keyedOperations } from './handlers.js';
import { staffHolder } from './auth.js';
import { intake } from './intake.js';
import { requestLog, type RequestLocals } from './request-log.js';
import { cors } from './cors.js';
import { decodeParams, Router, type Route } from './routes.js';
import { checkBodyText, readJsonBody } from './body.js';
import { validateRequest } from './validate.js';
import type { HttpDeps } from './deps.js';
import { answerOnce, IDEMPOTENCY_HEADER, takesIdempotencyKey } from './idempotency.js';
import { sendAnswer } from './respond.js';

export type { HandlerArgs, HttpDeps } from './deps.js';

/**
 * The HTTP API: express, with openapi/order-up.yaml deciding what a request may be. Per request,
 * in this order: an id and an access-log line; the intake (the probes go straight on; past the
 * bound on requests in progress 503 overloaded; the rest one per turn); CORS; the operation it is
 * for (404, 405); a staff token where the spec asks for one (401, before anything else about the
 * request is looked at); the body (415, 413, 400 for bad JSON); the spec's schemas (400 with
 * `errors`); the handler. Every failure becomes problem+json in one place (problem.ts), the
 * database unreachable or too slow included (503 not_ready).
 */
export async function createApp(deps: HttpDeps): Promise<express.Express> {
  const api = specBackend(SPEC_PATH);
  await api.init();
  const router = new Router(api.getOperations());
  for (const operation of api.getOperations()) {
    if (!handlers[operation.operationId!]) throw new Error(`no handler for operation ${operation.operationId}`);
    // The spec says which operations take an Idempotency-Key; the code must know how to answer each of them.
    if (takesIdempotencyKey(operation) !== operation.operationId! in keyedOperations) {
      throw new Error(
        `operation ${operation.operationId}: the spec and keyedOperations (http/handlers.ts) disagree on its Idempotency-Key`,
      );
    }
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('etag', false);

  app.use(requestLog(deps.log, deps.metrics));
  app.use(intake({ maxInFlight: deps.config.maxInFlight }));
  if (deps.config.corsOrigins.length > 0) app.use(cors(deps.config.corsOrigins));
  app.get(DOCS_ASSET, (_req, res) => {
    (res.locals as RequestLocals).route = DOCS_ASSET;
    res.sendFile(docsAssetPath());
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    let route;
    let staff: string | undefined;
    try {
      route = router.match(req.method, req.path);
      // The metrics' route label: the spec's template (/orders/{id}), never the raw path.
      (res.locals as RequestLocals).route = route.operation.path;
      if (isStaffOnly(route.operation)) {
        staff = staffHolder(req.headers.authorization, deps.config.staffHolders);
        if (staff === undefined) throw staffOnly();
        (res.locals as RequestLocals).staff = staff;
      }
    } catch (err) {
      return next(err);
    }
    const matched = route;
    readJsonBody(req, res, (err?: unknown) => {
      if (err) return next(err);
      serve(deps, api, matched, req, res, staff).catch(next);
    });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    sendProblem(res, err, (res.locals as RequestLocals).log ?? deps.log);
  });
  return app;
}

async function serve(deps: HttpDeps, api: OpenAPIBackend, route: Route, req: Request, res: Response, staff: string | undefined) {
  const { operation } = route;
  // Decoded only now: a staff endpoint answers 401 before a malformed path parameter's 400.
  const request = validateRequest(api, operation, decodeParams(route), req);
  checkBodyText(request.body);
  const locals = res.locals as RequestLocals;
  const ctx: DomainContext = {
    db: deps.db,
    services: deps.services,
    actor: staff === undefined ? { kind: 'customer' } : { kind: 'staff', name: staff },
    requestId: locals.requestId,
    get log() {
      return locals.log;
    },
  };
  const args = { ctx, deps, req, res };
  const key = request.headers[IDEMPOTENCY_HEADER];
  const keyed = keyedOperations[request.operationId];
  if (typeof key === 'string' && keyed) {
    const caller = staff === undefined ? 'public' : `staff:${staff}`;
    await answerOnce(ctx, key, caller, deps.config.idempotencyTtlMs, req, res, {
      run: () => keyed.run(request, args),
      present: (result) => keyed.present(result),
      takesKeyItself: keyed.takesKeyItself,
    });
    return;
  }
  const answer = await handlers[request.operationId](request, args);
  if (answer) sendAnswer(res, answer);
}

const DOCS_ASSET = '/docs/redoc.standalone.js';

const isStaffOnly = (operation: Operation) => operation.security?.some((s) => 'staffToken' in s) ?? false;

const staffOnly = () => new AppError('unauthorized', 'This endpoint is for staff: send Authorization: Bearer <staff token>.');

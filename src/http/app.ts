import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { OpenAPIBackend, type Context, type Request as OpenApiRequest } from 'openapi-backend';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Runtime } from '../runtime.js';
import { AppError, invalid } from '../domain/errors.js';
import type { DomainContext } from '../domain/context.js';
import { fieldErrors, sendProblem } from './problem.js';
import { docsAssetPath, SPEC_PATH } from './assets.js';
import { handlers } from './handlers.js';
import { isStaff } from './auth.js';

// ajv-formats is CommonJS with a default export; under nodenext the callable sits on .default.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

export type HttpDeps = Pick<Runtime, 'orm' | 'config' | 'log' | 'context'>;

/** What a handler gets: the domain context for this request plus the express pair to answer on. */
export interface HandlerArgs {
  ctx: DomainContext;
  deps: HttpDeps;
  req: Request;
  res: Response;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const JSON_TYPE = /^application\/(?:[a-z0-9.+-]*\+)?json$/;

export async function createApp(deps: HttpDeps): Promise<express.Express> {
  const api = new OpenAPIBackend({
    definition: SPEC_PATH,
    // The document is OpenAPI 3.1; `redocly lint` checks it, and Ajv2020 enforces 2020-12 keywords.
    quick: true,
    strict: true,
    coerceTypes: true,
    // Keep openapi-backend's options (they switch on type coercion for query and path parameters).
    customizeAjv: (_original, options) => {
      const ajv = new Ajv2020({ ...options, strict: false, allErrors: true });
      addFormats(ajv);
      return ajv;
    },
  });
  await api.init();

  const route = (name: string) => (c: Context, args: HandlerArgs) => handlers[name](c, args);
  for (const operationId of Object.keys(handlers)) api.register(operationId, route(operationId));
  api.registerSecurityHandler('staffToken', (c: Context) => isStaff(c.request.headers.authorization, deps.config.staffTokens));
  api.register({
    validationFail: (c: Context) => {
      throw invalid(fieldErrors(c.validation.errors ?? []));
    },
    unauthorizedHandler: () => {
      throw new AppError('unauthorized', 'This endpoint is for staff: send Authorization: Bearer <staff token>.');
    },
    notFound: (c: Context) => {
      throw new AppError('not_found', `There is no endpoint ${c.request.method.toUpperCase()} ${c.request.path}.`);
    },
    methodNotAllowed: (c: Context) => {
      throw new AppError('method_not_allowed', `${c.request.method.toUpperCase()} is not allowed on ${c.request.path}.`);
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('etag', false);

  // Request id and one log line per request.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.header('x-request-id');
    const id = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.locals.log = deps.log.child({ reqId: id });
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      res.locals.log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });

  if (deps.config.corsOrigins.length > 0) app.use(cors(deps.config.corsOrigins));

  app.get('/docs/redoc.standalone.js', (_req, res) => res.sendFile(docsAssetPath()));

  // Bodies: JSON only, at most 1 MB. Anything else is refused before it reaches a handler.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const hasBody = Number(req.header('content-length') ?? 0) > 0 || req.header('transfer-encoding') !== undefined;
    const type = (req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (hasBody && !JSON_TYPE.test(type)) {
      return next(new AppError('unsupported_media_type', 'Send request bodies as JSON with Content-Type: application/json.'));
    }
    next();
  });
  app.use(express.json({ limit: '1mb', strict: true, type: (req) => JSON_TYPE.test(String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()) }));

  app.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      const ctx: DomainContext = deps.context(res.locals.log);
      const request: OpenApiRequest = {
        method: req.method,
        path: req.path,
        query: req.query as Record<string, string | string[]>,
        headers: req.headers as Record<string, string | string[]>,
        body: req.body,
      };
      await api.handleRequest(request, { ctx, deps, req, res } satisfies HandlerArgs);
    } catch (err) {
      next(err);
    }
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    sendProblem(res, bodyParserError(err) ?? err, res.locals.log ?? deps.log);
  });
  return app;
}

/** express.json() failures carry a `type`; they are the client's fault, never a 500. */
function bodyParserError(err: unknown): AppError | undefined {
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.parse.failed') return invalid([{ path: '', message: 'is not valid JSON' }], 'The request body is not valid JSON.');
  if (type === 'entity.too.large') return new AppError('payload_too_large', 'The request body is larger than 1 MB.');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError('unsupported_media_type', 'Send request bodies as UTF-8 JSON.');
  }
  if (type === 'request.aborted' || type === 'request.size.invalid' || type === 'stream.encoding.set') {
    return invalid([{ path: '', message: 'could not be read' }], 'The request body could not be read.');
  }
  return undefined;
}

/** CORS for the listed origins only; with CORS_ORIGINS unset no CORS header is ever sent. */
function cors(origins: string[]) {
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.header('origin');
    if (!origin || !allowed.has(origin)) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
    res.setHeader('Access-Control-Expose-Headers', 'Location, X-Request-Id, Retry-After');
    if (req.method === 'OPTIONS' && req.header('access-control-request-method')) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Request-Id');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { OpenAPIBackend, type Context, type Request as OpenApiRequest } from 'openapi-backend';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Runtime } from '../runtime.js';
import { AppError, invalid, type FieldError } from '../domain/errors.js';
import type { DomainContext } from '../domain/context.js';
import { fieldErrors, sendProblem } from './problem.js';
import { docsAssetPath, SPEC_PATH } from './assets.js';
import { handlers } from './handlers.js';
import { isStaff } from './auth.js';
import { oneRequestPerTurn } from './intake.js';

// ajv-formats is CommonJS with a default export; under nodenext the callable sits on .default.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

export type HttpDeps = Pick<Runtime, 'db' | 'config' | 'log' | 'context' | 'services'>;

/** What a handler gets: the domain context for this request plus the express pair to answer on. */
export interface HandlerArgs {
  ctx: DomainContext;
  deps: HttpDeps;
  req: Request;
  res: Response;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
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
  // openapi-backend rebuilds its flat list of operations (lodash chains over the whole document)
  // twice per request while routing (~0.15 ms of CPU per request in `make bench`). The document never
  // changes after init, so build the list once.
  const operations = api.router.getOperations();
  api.router.getOperations = () => operations;

  // Runs after authentication and schema validation, so a 401 or a schema error comes first.
  const route = (name: string) => (c: Context, args: HandlerArgs) => {
    checkBodyText(c.request.requestBody);
    return handlers[name](c, args);
  };
  for (const operationId of Object.keys(handlers)) api.register(operationId, route(operationId));
  api.registerSecurityHandler('staffToken', (c: Context) => isStaff(c.request.headers.authorization, deps.config.staffTokens));
  api.register({
    validationFail: (c: Context) => {
      throw invalid(fieldErrors(c.validation.errors ?? []));
    },
    unauthorizedHandler: () => {
      throw staffOnly();
    },
    notFound: (c: Context) => {
      throw new AppError('not_found', `There is no endpoint ${c.request.method.toUpperCase()} ${c.request.path}.`);
    },
    methodNotAllowed: (c: Context, { res }: HandlerArgs) => {
      // RFC 9110: a 405 lists the methods the resource does support.
      const allowed = ['get', 'post', 'put', 'patch', 'delete'].filter((method) => api.matchOperation({ method, path: c.request.path, headers: {} }));
      if (allowed.includes('get')) allowed.splice(1, 0, 'head');
      res.setHeader('Allow', allowed.map((m) => m.toUpperCase()).join(', '));
      throw new AppError('method_not_allowed', `${c.request.method.toUpperCase()} is not allowed on ${c.request.path}.`);
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('etag', false);

  app.use(oneRequestPerTurn());

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

  // A staff endpoint answers 401 before it looks at anything else in the request: its body's type,
  // size or syntax, its path or its parameters (openapi-backend's own security check runs later).
  app.use((req: Request, _res: Response, next: NextFunction) => {
    let operation;
    try {
      operation = api.matchOperation({ method: req.method === 'HEAD' ? 'GET' : req.method, path: req.path, headers: {} });
    } catch {
      operation = undefined; // routing proper answers for a path it cannot match
    }
    if (isStaffOnly(operation) && !isStaff(req.header('authorization'), deps.config.staffTokens)) return next(staffOnly());
    next();
  });

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
        // HEAD is GET without the body (RFC 9110); node's http leaves the body out by itself.
        method: req.method === 'HEAD' ? 'GET' : req.method,
        path: req.path,
        query: req.query as Record<string, string | string[]>,
        headers: req.headers as Record<string, string | string[]>,
        body: req.body,
      };
      checkPathEncoding(api, request);
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

const isStaffOnly = (operation: { security?: Record<string, string[]>[] } | undefined) => operation?.security?.some((s) => 'staffToken' in s) ?? false;

const staffOnly = () => new AppError('unauthorized', 'This endpoint is for staff: send Authorization: Bearer <staff token>.');

/**
 * A path segment that is not valid percent-encoded UTF-8 (`/orders/%ZZ`) makes the router's
 * decodeURIComponent throw; answer 400 at the parameter it falls in instead of a 500.
 */
function checkPathEncoding(api: OpenAPIBackend, request: OpenApiRequest): void {
  const bad = (segment: string) => {
    try {
      decodeURIComponent(segment);
      return false;
    } catch {
      return true;
    }
  };
  const segments = request.path.split('/');
  if (!segments.some(bad)) return;
  // (A staff endpoint without a valid token has answered 401 before this point.)
  const operation = api.matchOperation(request);
  const template = operation?.path.split('/') ?? [];
  const errors: FieldError[] = [];
  segments.forEach((segment, i) => {
    if (!bad(segment)) return;
    const param = /^\{([^}]+)\}$/.exec(template[i] ?? '')?.[1];
    errors.push({ path: param ? `/path/${param}` : '/path', message: 'is not valid percent-encoded UTF-8' });
  });
  throw invalid(errors);
}

/**
 * PostgreSQL text cannot hold U+0000, and an unpaired surrogate cannot be stored as UTF-8 (it
 * would silently become U+FFFD): refuse both in any string of a JSON body, with the pointer to
 * it, before they can reach the database as a 500 or a quietly altered value. Iterative, so a
 * deeply nested body cannot exhaust the stack.
 */
function checkBodyText(body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  const errors: FieldError[] = [];
  const stack: [unknown, string][] = [[body, '']];
  const escape = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
  const check = (text: string, path: string) => {
    if (text.includes('\u0000')) errors.push({ path, message: 'must not contain the NUL character (U+0000)' });
    else if (LONE_SURROGATE.test(text)) errors.push({ path, message: 'must be valid Unicode text (it contains an unpaired surrogate)' });
  };
  while (stack.length > 0 && errors.length < 100) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') check(value, path);
    else if (Array.isArray(value)) value.forEach((v, i) => stack.push([v, `${path}/${i}`]));
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        check(k, `${path}/${escape(k)}`);
        stack.push([v, `${path}/${escape(k)}`]);
      }
    }
  }
  if (errors.length > 0) throw invalid(errors.reverse());
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

/**
 * CORS for the listed origins only; with CORS_ORIGINS unset no CORS header is ever sent.
 * Listed origins are compared as browsers send them (`scheme://host[:port]`, lower case, no
 * trailing slash), so `https://Shop.example/` in CORS_ORIGINS still matches. Preflights of a listed
 * origin are answered here, before routing (openapi-backend knows no OPTIONS operations and would
 * answer 405). Every response says `Vary: Origin` while CORS is on, so a shared cache never serves
 * one origin's answer to another.
 */
function cors(origins: string[]) {
  const allowed = new Set(origins.map(normalizeOrigin));
  return (req: Request, res: Response, next: NextFunction) => {
    res.vary('Origin');
    const origin = req.header('origin');
    if (!origin || !allowed.has(origin)) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
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

function normalizeOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? origin : url.origin;
  } catch {
    return origin;
  }
}

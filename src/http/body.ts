import express, { type NextFunction, type Request, type Response } from 'express';
import { AppError, invalid, type FieldError } from '../domain/errors.js';

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]*\+)?json$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const mediaType = (req: Request) =>
  String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
const hasBody = (req: Request) => Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

const parseJson = express.json({ limit: '1mb', strict: true, type: (req) => JSON_TYPE.test(mediaType(req as Request)) });

/**
 * Bodies are JSON only, at most 1 MB: anything else is refused before it reaches a handler. A
 * request without a body (every GET) skips the parser altogether.
 */
export function readJsonBody(req: Request, res: Response, next: NextFunction): void {
  if (!hasBody(req)) return next();
  if (!JSON_TYPE.test(mediaType(req))) {
    return next(new AppError('unsupported_media_type', 'Send request bodies as JSON with Content-Type: application/json.'));
  }
  parseJson(req, res, (err?: unknown) => next(err === undefined ? undefined : (bodyParserError(err) ?? err)));
}

/**
 * express.json() failures are the client's fault, never a 500: most carry a `type`; a body that
 * does not decode as its Content-Encoding says (a "gzip" body that is not gzip) fails in zlib
 * (`Z_DATA_ERROR` and kin), and anything else the parser refuses carries a 4xx `status`.
 */
function bodyParserError(err: unknown): AppError | undefined {
  const e = (err ?? {}) as { type?: string; code?: unknown; status?: unknown; encoding?: string };
  const type = e.type;
  if (type === 'entity.parse.failed') return invalid([{ path: '', message: 'is not valid JSON' }], 'The request body is not valid JSON.');
  if (type === 'entity.too.large') return new AppError('payload_too_large', 'The request body is larger than 1 MB.');
  if (type === 'encoding.unsupported') {
    return new AppError(
      'unsupported_media_type',
      `The Content-Encoding ${JSON.stringify(String(e.encoding ?? ''))} is not supported: send the body as is, or with gzip, deflate or br.`,
    );
  }
  if (type === 'charset.unsupported') return new AppError('unsupported_media_type', 'Send request bodies as UTF-8 JSON.');
  if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return invalid(
      [{ path: '', message: 'could not be decoded as its Content-Encoding says' }],
      'The request body could not be decoded as its Content-Encoding says.',
    );
  }
  if (
    type === 'request.aborted' ||
    type === 'request.size.invalid' ||
    type === 'stream.encoding.set' ||
    (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
  ) {
    return invalid([{ path: '', message: 'could not be read' }], 'The request body could not be read.');
  }
  return undefined;
}

/**
 * PostgreSQL text cannot hold U+0000, and an unpaired surrogate cannot be stored as UTF-8 (it
 * would silently become U+FFFD): refuse both in any string of a JSON body, with the pointer to
 * it, before they can reach the database as a 500 or a quietly altered value. Iterative, so a
 * deeply nested body cannot exhaust the stack.
 */
export function checkBodyText(body: unknown): void {
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

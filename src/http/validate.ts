import type { OpenAPIBackend, Operation } from 'openapi-backend';
import type { Request } from 'express';
import type { ErrorObject } from 'ajv';
import { invalid, type FieldError } from '../domain/errors.js';
import { fieldErrors, MAX_FIELD_ERRORS } from './problem.js';
import type { ApiRequest } from './deps.js';

type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * Validates a routed request against its operation in the spec with openapi-backend's compiled Ajv
 * validators (the same ones its handleRequest runs), fed directly: path parameters come from our
 * router and query and headers from express, so the request is not parsed again. Query and path
 * values are coerced to their schema types (a `limit` of "5" becomes 5).
 */
export function validateRequest(api: OpenAPIBackend, operation: Operation, params: Record<string, string>, req: Request): ApiRequest {
  const validators = (api.validator.getRequestValidatorsForOperation(operation.operationId!) ?? []) as Validate[];
  const query = { ...(req.query as Record<string, string | string[]>) };
  const parameters: Record<string, unknown> = { path: { ...params }, query, header: req.headers, cookie: {} };
  if (req.body !== undefined) {
    parameters.requestBody = req.body;
    refuseManyUnknownFields(operation, req.body);
  }
  const errors: ErrorObject[] = [];
  for (const validate of validators) {
    if (!validate(parameters) && validate.errors) for (const e of validate.errors) errors.push(e);
  }
  if (errors.length > 0) throw invalid(fieldErrors(errors).map((e) => ({ ...e, path: declaredHeaderName(operation, e.path) })));
  return {
    operationId: operation.operationId!,
    params: parameters.path as Record<string, string>,
    query: parameters.query as ApiRequest['query'],
    headers: req.headers,
    body: req.body,
  };
}

/** Headers are validated lower-cased; an error names the header as the spec declares it (`/header/Idempotency-Key`). */
function declaredHeaderName(operation: Operation, path: string): string {
  if (!path.startsWith('/header/')) return path;
  const name = path.slice('/header/'.length);
  const declared = (operation.parameters ?? []).find((p) => 'in' in p && p.in === 'header' && p.name.toLowerCase() === name);
  return declared && 'name' in declared ? `/header/${declared.name}` : path;
}

interface BodySchema {
  type?: unknown;
  properties?: Record<string, BodySchema>;
  additionalProperties?: unknown;
  items?: BodySchema;
}

/**
 * A hostile body can carry tens of thousands of unknown fields (a 1 MB body, 60,000 of them). Ajv
 * with allErrors would make an error object for each, and that costs far more than the request is
 * worth, when the answer lists only MAX_FIELD_ERRORS of them anyway. So unknown fields are counted
 * first, cheaply, walking the body along its schema (objects without additionalProperties, and
 * arrays); past the limit, that is the answer - the first ones, and how many there are - and the
 * schema's other rules are not looked at.
 */
function refuseManyUnknownFields(operation: Operation, body: unknown): void {
  const schema = (operation.requestBody as { content?: Record<string, { schema?: BodySchema }> } | undefined)?.content?.['application/json']
    ?.schema;
  if (!schema || body === null || typeof body !== 'object') return;
  const first: FieldError[] = [];
  let count = 0;
  const pointer = (path: string, key: string) => `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  const stack: [BodySchema, unknown, string][] = [[schema, body, '']];
  while (stack.length > 0) {
    const [s, value, path] = stack.pop()!;
    if (Array.isArray(value)) {
      if (s.items) for (let i = value.length - 1; i >= 0; i -= 1) stack.push([s.items, value[i], `${path}/${i}`]);
    } else if (value !== null && typeof value === 'object' && s.properties) {
      const properties = s.properties;
      const closed = s.additionalProperties === false;
      for (const key of Object.keys(value)) {
        if (Object.hasOwn(properties, key)) stack.push([properties[key], (value as Record<string, unknown>)[key], pointer(path, key)]);
        else if (closed && ++count <= MAX_FIELD_ERRORS) first.push({ path: pointer(path, key), message: 'is not a known field' });
      }
    }
  }
  if (count > MAX_FIELD_ERRORS)
    throw invalid(first, `The request body has ${count} unknown fields; the first ${MAX_FIELD_ERRORS} are listed.`);
}

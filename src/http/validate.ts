import type { OpenAPIBackend, Operation } from 'openapi-backend';
import type { Request } from 'express';
import type { ErrorObject } from 'ajv';
import { invalid } from '../domain/errors.js';
import { fieldErrors } from './problem.js';
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
  if (req.body !== undefined) parameters.requestBody = req.body;
  const errors: ErrorObject[] = [];
  for (const validate of validators) {
    if (!validate(parameters) && validate.errors) errors.push(...validate.errors);
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

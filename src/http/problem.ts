import type { Response } from 'express';
import type { ErrorObject } from 'ajv';
import type { Logger } from 'pino';
import { AppError, knownError, type ErrorCode, type FieldError } from '../domain/errors.js';
import type { components } from '../generated/order-up.js';

/** The one table from error code to HTTP status and title. */
const STATUS: Record<ErrorCode, [number, string]> = {
  invalid_request: [400, 'Invalid request'],
  invalid_total: [400, 'Negative order total'],
  unauthorized: [401, 'Unauthorized'],
  payment_declined: [402, 'Payment declined'],
  order_not_found: [404, 'Order not found'],
  not_found: [404, 'Not found'],
  payment_not_found: [404, 'Payment not found'],
  method_not_allowed: [405, 'Method not allowed'],
  request_timeout: [408, 'Request timeout'],
  order_exists: [409, 'Order already exists'],
  order_not_pending: [409, 'Order is not pending'],
  order_fulfilled: [409, 'Order is fulfilled'],
  order_not_charged: [409, 'Order is not charged'],
  order_cancelled: [409, 'Order is cancelled'],
  operation_in_progress: [409, 'Operation in progress'],
  payment_in_doubt: [409, 'Payment in doubt'],
  payment_not_in_doubt: [409, 'Payment not in doubt'],
  idempotency_key_in_use: [409, 'Idempotency key in use'],
  payload_too_large: [413, 'Payload too large'],
  unsupported_media_type: [415, 'Unsupported media type'],
  idempotency_key_reused: [422, 'Idempotency key reused'],
  headers_too_large: [431, 'Request headers too large'],
  internal_error: [500, 'Internal error'],
  charge_failed: [502, 'Charge failed'],
  fulfillment_failed: [502, 'Fulfillment failed'],
  not_ready: [503, 'Not ready'],
  charge_queue_full: [503, 'Charge queue full'],
  overloaded: [503, 'Overloaded'],
  upstream_timeout: [504, 'Upstream timeout'],
};

export const PROBLEM_TYPE_BASE = 'https://order-up.example/problems/';

/** An RFC 9457 problem document (the spec's Problem). */
export type Problem = components['schemas']['Problem'];

/** A validation answer lists at most this many `errors`; its detail says how many there were. */
export const MAX_FIELD_ERRORS = 50;

export function problemFor(err: unknown): { problem: Problem; retryAfterSeconds?: number } {
  const e = knownError(err);
  if (e) {
    const [defaultStatus, title] = STATUS[e.code];
    const problem: Problem = {
      type: PROBLEM_TYPE_BASE + e.code,
      title,
      // payment_in_doubt is 409 when an earlier payment blocks, 502 when this very call broke.
      status: e.extra.status ?? defaultStatus,
      detail: e.detail,
      code: e.code,
    };
    if (e.extra.errors) {
      const all = e.extra.errors;
      problem.errors = all.length > MAX_FIELD_ERRORS ? all.slice(0, MAX_FIELD_ERRORS) : all;
      if (all.length > MAX_FIELD_ERRORS) problem.detail += ` ${all.length} errors were found; the first ${MAX_FIELD_ERRORS} are listed.`;
    }
    return { problem, retryAfterSeconds: e.extra.retryAfterSeconds };
  }
  return {
    problem: {
      type: PROBLEM_TYPE_BASE + 'internal_error',
      title: STATUS.internal_error[1],
      status: 500,
      detail: 'Something went wrong on our side. The request id in X-Request-Id helps us find out what.',
      code: 'internal_error',
    },
  };
}

/** Sends any error as RFC 9457 problem+json. Unknown errors are logged in full and answered without internals. */
export function sendProblem(res: Response, err: unknown, log?: Logger): void {
  const { problem, retryAfterSeconds } = problemFor(err);
  if (!(err instanceof AppError)) {
    if (problem.code === 'not_ready') log?.warn({ err }, 'the database is unavailable');
    else if (problem.status >= 500) log?.error({ err }, 'unhandled error');
  }
  if (res.headersSent) {
    // Too late for a problem: part of the answer is out. Cut the connection so the client sees it broke.
    res.destroy();
    return;
  }
  if (problem.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer realm="order-up staff"');
  if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(retryAfterSeconds));
  if (err instanceof AppError && err.extra.allow) res.setHeader('Allow', err.extra.allow);
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

/** The spec's pattern for a string without NUL (cardToken, reason). */
const NO_NUL = '^[^\\u0000]*$';

/** Turns Ajv errors from openapi-backend into `{path, message}` pairs a frontend can put next to a field. */
export function fieldErrors(errors: ErrorObject[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // Schema combinators repeat what their branches said; the branches are the useful part.
    if (e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    let path = e.instancePath.startsWith('/requestBody') ? e.instancePath.slice('/requestBody'.length) : e.instancePath;
    let message = e.message ?? 'is invalid';
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required') {
      const missing = String(params.missingProperty);
      if (missing === 'requestBody') {
        message = 'a JSON body is required';
      } else {
        path = `${path}/${missing}`;
        message = 'is required';
      }
    } else if (e.keyword === 'additionalProperties') {
      path = `${path}/${String(params.additionalProperty)}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      message = `must be one of: ${params.allowedValues.map(String).join(', ')}`;
    } else if (e.keyword === 'pattern' && path.endsWith('/description')) {
      message = 'must not be blank';
    } else if (e.keyword === 'pattern' && params.pattern === NO_NUL) {
      message = 'must not contain the NUL character (U+0000)';
    } else if (e.keyword === 'pattern' && path.endsWith('/customerEmail')) {
      message = 'must be an email address: no spaces and exactly one @ with something on both sides';
    }
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path, message });
    }
  }
  return out;
}

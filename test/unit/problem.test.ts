// The problem mapping (src/http/problem.ts): every error becomes one RFC 9457 answer - status, code,
// body and headers - in one place.
import { describe, expect, test } from '@jest/globals';
import type { ErrorObject } from 'ajv';
import type { Response } from 'express';
import { DatabaseUnavailable } from '../../src/db/database.js';
import { AppError, invalid, reconnecting, type ErrorCode } from '../../src/domain/errors.js';
import { MAX_FIELD_ERRORS, PROBLEM_TYPE_BASE, fieldErrors, problemFor, sendProblem } from '../../src/http/problem.js';

describe('problemFor', () => {
  const statuses: [ErrorCode, number, string][] = [
    ['invalid_request', 400, 'Invalid request'],
    ['unauthorized', 401, 'Unauthorized'],
    ['payment_declined', 402, 'Payment declined'],
    ['order_not_found', 404, 'Order not found'],
    ['method_not_allowed', 405, 'Method not allowed'],
    ['order_not_pending', 409, 'Order is not pending'],
    ['payment_in_doubt', 409, 'Payment in doubt'],
    ['payload_too_large', 413, 'Payload too large'],
    ['unsupported_media_type', 415, 'Unsupported media type'],
    ['idempotency_key_reused', 422, 'Idempotency key reused'],
    ['headers_too_large', 431, 'Request headers too large'],
    ['charge_failed', 502, 'Charge failed'],
    ['charge_queue_full', 503, 'Charge queue full'],
    ['upstream_timeout', 504, 'Upstream timeout'],
  ];
  for (const [code, status, title] of statuses) {
    test(`when the domain answers ${code}, then the problem is ${status} "${title}" with that code and detail`, () => {
      const { problem } = problemFor(new AppError(code, 'What happened, for humans.'));
      expect(problem).toEqual({ type: PROBLEM_TYPE_BASE + code, title, status, detail: 'What happened, for humans.', code });
    });
  }

  test('when an error names its own status (a payment in doubt because this very call broke), then that status wins', () => {
    expect(problemFor(new AppError('payment_in_doubt', 'The connection broke.', { status: 502 })).problem.status).toBe(502);
  });

  test('when an error asks the client to wait, then retryAfterSeconds comes with the problem', () => {
    expect(problemFor(reconnecting('nothing was done.')).retryAfterSeconds).toBe(1);
    expect(problemFor(new AppError('order_not_found', 'No.')).retryAfterSeconds).toBeUndefined();
  });

  test('when a validation finds more errors than the answer lists, then the first ones are listed and the detail says how many', () => {
    const errors = Array.from({ length: MAX_FIELD_ERRORS + 7 }, (_, i) => ({ path: `/lineItems/${i}/quantity`, message: 'must be >= 1' }));
    const { problem } = problemFor(invalid(errors));
    expect(problem.errors).toEqual(errors.slice(0, MAX_FIELD_ERRORS));
    expect(problem.detail).toBe(
      `The request does not match the API contract. ${MAX_FIELD_ERRORS + 7} errors were found; the first ${MAX_FIELD_ERRORS} are listed.`,
    );
  });

  test('when a validation finds a few errors, then all are listed and the detail is left alone', () => {
    const errors = [{ path: '/customerEmail', message: 'is required' }];
    expect(problemFor(invalid(errors)).problem).toMatchObject({
      status: 400,
      code: 'invalid_request',
      errors,
      detail: 'The request does not match the API contract.',
    });
  });

  test('when the database cannot be reached, then 503 not_ready with Retry-After 2, never a 500', () => {
    for (const err of [
      new DatabaseUnavailable('no database connection could be had', new Error('connect ECONNREFUSED')),
      Object.assign(new Error('x'), { code: 'ECONNRESET' }),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
    ]) {
      const { problem, retryAfterSeconds } = problemFor(err);
      expect([problem.status, problem.code, retryAfterSeconds]).toEqual([503, 'not_ready', 2]);
    }
  });

  test('when an error is unknown, then 500 internal_error whose body carries nothing of the error', () => {
    const { problem, retryAfterSeconds } = problemFor(new Error("insert into payments values ('tok_secret')"));
    expect(problem).toEqual({
      type: PROBLEM_TYPE_BASE + 'internal_error',
      title: 'Internal error',
      status: 500,
      detail: 'Something went wrong on our side. The request id in X-Request-Id helps us find out what.',
      code: 'internal_error',
    });
    expect(retryAfterSeconds).toBeUndefined();
  });
});

/** Just enough of an express Response to see what sendProblem sends. */
function fakeResponse() {
  const sent = { status: 0, type: '', body: '', headers: {} as Record<string, string>, destroyed: false };
  const res = {
    headersSent: false,
    setHeader: (name: string, value: string) => void (sent.headers[name] = value),
    status: (status: number) => ((sent.status = status), res),
    type: (type: string) => ((sent.type = type), res),
    send: (body: string) => ((sent.body = body), res),
    destroy: () => void (sent.destroyed = true),
  };
  return { res: res as unknown as Response, sent };
}

describe('sendProblem', () => {
  test('when a staff endpoint is called without a token, then 401 with WWW-Authenticate and the problem as problem+json', () => {
    const { res, sent } = fakeResponse();
    sendProblem(res, new AppError('unauthorized', 'This endpoint is for staff.'));
    expect(sent.status).toBe(401);
    expect(sent.type).toBe('application/problem+json');
    expect(sent.headers['WWW-Authenticate']).toBe('Bearer realm="order-up staff"');
    expect(JSON.parse(sent.body)).toMatchObject({ code: 'unauthorized', detail: 'This endpoint is for staff.' });
  });

  test('when the answer says when to retry or which methods are allowed, then Retry-After and Allow are set', () => {
    const full = fakeResponse();
    sendProblem(full.res, new AppError('charge_queue_full', 'Too many.', { retryAfterSeconds: 3 }));
    expect(full.sent.headers['Retry-After']).toBe('3');
    const wrongMethod = fakeResponse();
    sendProblem(wrongMethod.res, new AppError('method_not_allowed', 'DELETE is not allowed on /orders.', { allow: 'GET, HEAD, POST' }));
    expect(wrongMethod.sent.headers.Allow).toBe('GET, HEAD, POST');
    expect(wrongMethod.sent.status).toBe(405);
  });

  test('when part of the answer is already out, then the connection is cut instead of a second answer', () => {
    const { res, sent } = fakeResponse();
    (res as { headersSent: boolean }).headersSent = true;
    sendProblem(res, new Error('broke mid-answer'));
    expect(sent.destroyed).toBe(true);
    expect(sent.status).toBe(0);
  });
});

describe('fieldErrors', () => {
  const ajvError = (e: Partial<ErrorObject>): ErrorObject =>
    ({ instancePath: '', schemaPath: '#', keyword: 'type', params: {}, ...e }) as ErrorObject;

  test('when Ajv reports missing and unknown fields, then each error points at the field itself', () => {
    expect(
      fieldErrors([
        ajvError({ instancePath: '/requestBody', keyword: 'required', params: { missingProperty: 'customerEmail' } }),
        ajvError({ instancePath: '/requestBody/lineItems/0', keyword: 'additionalProperties', params: { additionalProperty: 'sku' } }),
        ajvError({ instancePath: '', keyword: 'required', params: { missingProperty: 'requestBody' } }),
      ]),
    ).toEqual([
      { path: '/customerEmail', message: 'is required' },
      { path: '/lineItems/0/sku', message: 'is not a known field' },
      { path: '', message: 'a JSON body is required' },
    ]);
  });

  test('when Ajv reports an enum, a blank description or a bad e-mail, then the message says it in words', () => {
    expect(
      fieldErrors([
        ajvError({
          instancePath: '/query/status',
          keyword: 'enum',
          params: { allowedValues: ['pending', 'charged'] },
          message: 'must be equal to one of the allowed values',
        }),
        ajvError({ instancePath: '/requestBody/lineItems/1/description', keyword: 'pattern', params: { pattern: '\\S' } }),
        ajvError({ instancePath: '/requestBody/customerEmail', keyword: 'pattern', params: { pattern: '^[^@\\s]+@[^@\\s]+$' } }),
      ]).map((e) => e.message),
    ).toEqual([
      'must be one of: pending, charged',
      'must not be blank',
      'must be an email address: no spaces and exactly one @ with something on both sides',
    ]);
  });

  test('when a combinator repeats what its branches said, or the same error comes twice, then it is listed once', () => {
    expect(
      fieldErrors([
        ajvError({ instancePath: '/requestBody/reason', keyword: 'anyOf', message: 'must match a schema in anyOf' }),
        ajvError({ instancePath: '/requestBody/reason', keyword: 'maxLength', message: 'must NOT have more than 500 characters' }),
        ajvError({ instancePath: '/requestBody/reason', keyword: 'maxLength', message: 'must NOT have more than 500 characters' }),
      ]),
    ).toEqual([{ path: '/reason', message: 'must NOT have more than 500 characters' }]);
  });
});

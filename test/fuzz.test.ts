// A spec-driven fuzz test: requests for every operation of openapi/order-up.yaml, generated from
// the spec's own schemas (bodies, path, query and header parameters) - valid ones and mutated ones -
// sent to the real app (fake upstreams that succeed). Every answer must be one the spec documents
// for its operation, never a 5xx, with a body that matches the spec's schema for that answer (Ajv2020
// on the spec's response schemas: Problem for every error). The seed is printed; FUZZ_SEED=<n>
// repeats a run, FUZZ_RUNS=<n> changes its length.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { OpenAPIBackend, type Operation } from 'openapi-backend';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { newOrder, startTestApp, STAFF_TOKEN, type TestApp } from './support/app.js';
import { FakeChargeService } from './support/fake-charge.js';
import { FakeFulfillmentService } from './support/fake-fulfillment.js';
import { addFormats } from '../src/http/spec.js';
import { SPEC_PATH } from '../src/http/assets.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 2500;

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: unknown;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
}

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: Schema;
}

/** What one generated request is. */
interface FuzzRequest {
  operationId: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

let app: TestApp;
let charge: FakeChargeService;
let fulfillment: FakeFulfillmentService;
let operations: Operation[];
const responseValidators = new Map<string, ValidateFunction>();
/** Orders that exist (created before the run and by it): path ids are often drawn from these. */
const knownIds: string[] = [];
/** Idempotency keys already used, so some requests reuse one (for another request: 422). */
const usedKeys = ['fuzz-key-1', 'fuzz-key-2', 'fuzz-key-3'];

beforeAll(async () => {
  [charge, fulfillment] = await Promise.all([FakeChargeService.start(), FakeFulfillmentService.start()]);
  charge.default = { status: 201 };
  app = await startTestApp({ chargeUrl: charge.url, fulfillmentUrl: fulfillment.url });
  const api = new OpenAPIBackend({ definition: SPEC_PATH, quick: true });
  await api.init();
  operations = api.getOperations();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const op of operations) {
    for (const [status, response] of Object.entries(op.responses ?? {})) {
      for (const [type, media] of Object.entries((response as { content?: Record<string, { schema?: object }> }).content ?? {})) {
        if (media.schema && type.endsWith('json')) responseValidators.set(`${op.operationId} ${status}`, ajv.compile(media.schema));
      }
    }
  }
  for (let i = 0; i < 10; i += 1) {
    const created = await app.call('POST', '/orders', { body: newOrder({ id: `fuzz-seed-${i}` }) });
    knownIds.push(created.body.order.id);
  }
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await Promise.all([charge?.stop(), fulfillment?.stop()]);
});

// ---- arbitraries from JSON Schema ----

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 20 }),
  fc.constant([]),
  fc.constant({}),
);

function stringFor(s: Schema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = Math.min(s.maxLength ?? 40, 60);
  if (s.pattern) {
    let matching: fc.Arbitrary<string>;
    try {
      matching = fc.stringMatching(new RegExp(s.pattern, 'u'));
    } catch {
      matching = fc.string({ minLength: min, maxLength: max });
    }
    return matching.filter((v) => v.length >= min && v.length <= (s.maxLength ?? Infinity));
  }
  return fc.string({ minLength: min, maxLength: max, unit: 'grapheme' });
}

/** A value the schema accepts (as far as JSON Schema can tell). */
function valid(s: Schema): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const types = Array.isArray(s.type) ? s.type : [s.type ?? 'object'];
  return fc.oneof(
    ...types.map((type): fc.Arbitrary<unknown> => {
      switch (type) {
        case 'null':
          return fc.constant(null);
        case 'boolean':
          return fc.boolean();
        case 'integer':
          return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 });
        case 'number':
          return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
        case 'string':
          return stringFor(s);
        case 'array':
          return fc.array(valid(s.items ?? {}), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 5, 5) });
        default: {
          const props = s.properties ?? {};
          const required = new Set(s.required ?? []);
          const shape: Record<string, fc.Arbitrary<unknown>> = {};
          for (const [k, v] of Object.entries(props)) shape[k] = valid(v);
          return fc.record(shape, { requiredKeys: Object.keys(props).filter((k) => required.has(k)) });
        }
      }
    }),
  );
}

/** Every place in a value, with the schema that governs it. */
function places(
  s: Schema,
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; schema: Schema; value: unknown }[] {
  const out = [{ path, schema: s, value }];
  if (Array.isArray(value) && s.items) value.forEach((v, i) => out.push(...places(s.items!, v, [...path, i])));
  else if (value !== null && typeof value === 'object' && s.properties) {
    for (const [k, v] of Object.entries(value)) if (s.properties[k]) out.push(...places(s.properties[k], v, [...path, k]));
  }
  return out;
}

function setAt(root: unknown, path: (string | number)[], replace: (old: unknown) => unknown): unknown {
  if (path.length === 0) return replace(root);
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  node[last] = replace(node[last]);
  if (node[last] === undefined) delete node[last];
  return copy;
}

/** One way to break a value at one place (what a careless or hostile client sends). */
const mutation = fc.oneof(
  fc.constant('drop' as const),
  fc.constant('unknown field' as const),
  fc.constant('wrong type' as const),
  fc.constant('out of range' as const),
  fc.constant('too long' as const),
  fc.constant('nul' as const),
  fc.constant('lone surrogate' as const),
);

function mutated(s: Schema): fc.Arbitrary<unknown> {
  return valid(s).chain((value) => {
    const all = places(s, value);
    return fc
      .tuple(fc.nat({ max: all.length - 1 }), mutation, anyJson, fc.string({ minLength: 1, maxLength: 12 }))
      .map(([i, kind, junk, name]) => {
        const { path, schema } = all[i];
        switch (kind) {
          case 'drop':
            return path.length === 0 ? undefined : setAt(value, path, () => undefined);
          case 'unknown field':
            return setAt(value, path, (old) =>
              old !== null && typeof old === 'object' && !Array.isArray(old) ? { ...old, [`x_${name}`]: junk } : junk,
            );
          case 'wrong type':
            return setAt(value, path, (old) => (typeof junk === typeof old ? [junk] : junk));
          case 'out of range':
            return setAt(value, path, (old) =>
              typeof old === 'number'
                ? schema.maximum !== undefined
                  ? schema.maximum + 1
                  : schema.minimum !== undefined
                    ? schema.minimum - 1
                    : old + 0.5
                : old,
            );
          case 'too long':
            return setAt(value, path, (old) =>
              typeof old === 'string'
                ? old + 'x'.repeat((schema.maxLength ?? 200) + 1)
                : Array.isArray(old)
                  ? [...old, ...Array(101).fill(old[0] ?? 1)]
                  : old,
            );
          case 'nul':
            return setAt(value, path, (old) => (typeof old === 'string' ? `${old}\u0000` : old));
          case 'lone surrogate':
            return setAt(value, path, (old) => (typeof old === 'string' ? `${old}\uD800` : old));
        }
      });
  });
}

// ---- requests ----

const cursor = fc.oneof(
  fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map((n) => `o1.${Buffer.from(String(n)).toString('base64url')}`),
  fc.string({ minLength: 1, maxLength: 30 }).map((s) => `o1.${Buffer.from(s).toString('base64url')}`),
  fc.string({ minLength: 1, maxLength: 30 }),
);

function pathId(param: Parameter): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.nat().map((i) => knownIds[i % knownIds.length]) },
    { weight: 2, arbitrary: valid(param.schema).map(String) },
    { weight: 1, arbitrary: fc.constantFrom('%ZZ', 'a b', 'x'.repeat(65), 'ünï', '%00', 'a.b') },
  );
}

function queryValue(param: Parameter): fc.Arbitrary<string> {
  if (param.name === 'cursor') return cursor;
  return fc.oneof(
    { weight: 4, arbitrary: valid(param.schema).map(String) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('0', '501', '1.5', '-1', 'abc')) },
  );
}

function headerValue(param: Parameter): fc.Arbitrary<string> {
  if (param.name.toLowerCase() === 'idempotency-key') {
    return fc.oneof(
      { weight: 3, arbitrary: fc.uuid() },
      { weight: 2, arbitrary: fc.nat().map((i) => usedKeys[i % usedKeys.length]) },
      { weight: 1, arbitrary: fc.constantFrom('has space', 'k'.repeat(256)) },
    );
  }
  return valid(param.schema).map(String);
}

function requestFor(op: Operation): fc.Arbitrary<FuzzRequest> {
  const params = (op.parameters ?? []) as Parameter[];
  const staff = op.security?.some((s) => 'staffToken' in s) ?? false;
  const pathParams = params.filter((p) => p.in === 'path');
  const query = params.filter((p) => p.in === 'query');
  const headers = params.filter((p) => p.in === 'header');
  const bodySchema = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content?.['application/json']
    ?.schema;

  const pathArb = fc.tuple(...pathParams.map(pathId)).map((values) => {
    let path = op.path;
    // Sent percent-encoded, except the deliberately broken encodings.
    pathParams.forEach(
      (p, i) => (path = path.replace(`{${p.name}}`, values[i].startsWith('%') ? values[i] : encodeURIComponent(values[i]))),
    );
    return path;
  });
  const queryArb = fc
    .tuple(
      ...query.map((p) => fc.option(queryValue(p), { nil: undefined, freq: 2 })),
      fc.oneof({ weight: 15, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) }),
    )
    .map((values) => {
      const q = new URLSearchParams();
      query.forEach((p, i) => values[i] !== undefined && q.set(p.name, values[i]));
      const extra = values[query.length];
      if (extra !== undefined) q.set(`x${extra}`, '1'); // an unknown parameter now and then
      const text = q.toString();
      return text ? `?${text}` : '';
    });
  const headerArb = fc.tuple(...headers.map((p) => fc.option(headerValue(p), { nil: undefined, freq: 2 }))).map((values) => {
    const h: Record<string, string> = {};
    headers.forEach((p, i) => values[i] !== undefined && (h[p.name] = values[i]));
    return h;
  });
  const authArb = staff
    ? fc.oneof(
        { weight: 10, arbitrary: fc.constant(`Bearer ${STAFF_TOKEN}`) },
        { weight: 1, arbitrary: fc.constantFrom(undefined, 'Bearer wrong', 'Basic abc') },
      )
    : fc.constant(undefined);
  const bodyArb: fc.Arbitrary<{ text?: string; type?: string }> = bodySchema
    ? fc.oneof(
        { weight: 4, arbitrary: valid(bodySchema).map((v) => ({ text: JSON.stringify(v), type: 'application/json' })) },
        {
          weight: 4,
          arbitrary: mutated(bodySchema).map((v) => ({ text: v === undefined ? undefined : JSON.stringify(v), type: 'application/json' })),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom('{"a":', '[', 'null', '"x"', '{}', '[]').map((text) => ({ text, type: 'application/json' })),
        },
        { weight: 1, arbitrary: valid(bodySchema).map((v) => ({ text: JSON.stringify(v), type: 'text/plain' })) },
        { weight: 1, arbitrary: fc.constant({}) },
      )
    : fc.constant({});

  return fc.tuple(pathArb, queryArb, headerArb, authArb, bodyArb).map(([path, q, h, auth, body]) => {
    const allHeaders: Record<string, string> = { ...h };
    if (auth) allHeaders.authorization = auth;
    if (body.text !== undefined && body.type) allHeaders['content-type'] = body.type;
    return { operationId: op.operationId!, method: op.method.toUpperCase(), path: path + q, headers: allHeaders, body: body.text };
  });
}

// ---- the property ----

async function send(r: FuzzRequest) {
  const res = await fetch(app.url + r.path, { method: r.method, headers: r.headers, body: r.body, redirect: 'manual' });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

test(`when thousands of requests generated from the spec (valid and mutated) reach every operation, then every answer is one the spec documents, never a 5xx, and matches its schema`, async () => {
  console.log(`fuzz: seed ${SEED}, ${RUNS} requests (repeat with FUZZ_SEED=${SEED})`);
  const byId = new Map(operations.map((op) => [op.operationId!, op]));
  // Weighted towards the operations with inputs; the probes and documents need few.
  const weight = (op: Operation) => (['getHealth', 'getReady', 'getOpenApi', 'getDocs'].includes(op.operationId!) ? 1 : 8);
  const anyRequest = fc.oneof(...operations.map((op) => ({ weight: weight(op), arbitrary: requestFor(op) })));
  const seen = new Map<string, number>();
  let created = 0;

  await fc.assert(
    fc.asyncProperty(anyRequest, async (r) => {
      const op = byId.get(r.operationId)!;
      const { status, headers, text } = await send(r);
      const what = `${r.method} ${r.path} ${JSON.stringify(r.headers)} ${r.body?.slice(0, 300) ?? ''} -> ${status} ${text.slice(0, 300)}`;
      seen.set(`${r.operationId} ${status}`, (seen.get(`${r.operationId} ${status}`) ?? 0) + 1);
      if (status >= 500) throw new Error(`a 5xx: ${what}`);
      if (!Object.hasOwn(op.responses ?? {}, String(status)))
        throw new Error(`an answer the spec does not document for ${r.operationId}: ${what}`);
      if (!headers.get('x-request-id')) throw new Error(`no X-Request-Id: ${what}`);
      const validate = responseValidators.get(`${r.operationId} ${status}`);
      if (validate) {
        const body = JSON.parse(text) as unknown;
        if (!validate(body))
          throw new Error(`the body breaks the spec's schema (${JSON.stringify(validate.errors?.slice(0, 3))}): ${what}`);
      }
      // The state behind the answer: what a 2xx says happened is stored.
      if (status === 201 && r.operationId === 'createOrder') {
        const { order } = JSON.parse(text) as { order: { id: string; status: string } };
        const [row] = await app.db.execute<{ status: string }[]>('select status from orders where id = ?', [order.id]);
        if (row?.status !== 'pending') throw new Error(`a created order is not stored pending: ${what}`);
        knownIds.push(order.id);
        created += 1;
      } else if (
        status === 200 &&
        ['chargeOrder', 'cancelOrder', 'fulfillOrder'].includes(r.operationId) &&
        headers.get('idempotent-replayed') !== 'true'
      ) {
        const { order } = JSON.parse(text) as { order: { id: string; status: string } };
        const [row] = await app.db.execute<{ status: string; operation: string | null }[]>(
          'select status, operation from orders where id = ?',
          [order.id],
        );
        if (row?.status !== order.status || row.operation !== null)
          throw new Error(`the stored order (${JSON.stringify(row)}) is not what was answered: ${what}`);
      }
      const key = r.headers['Idempotency-Key'];
      if (key && !usedKeys.includes(key) && usedKeys.length < 50) usedKeys.push(key);
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );

  if (process.env.FUZZ_VERBOSE)
    console.log(
      [...seen.entries()]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join('\n'),
    );
  // The run reached every operation, with successes and refusals both.
  for (const op of operations) expect([...seen.keys()].some((k) => k.startsWith(`${op.operationId} `))).toBe(true);
  expect(created).toBeGreaterThan(0);
  for (const id of ['chargeOrder', 'cancelOrder', 'fulfillOrder', 'listOrders', 'getOrder']) {
    expect([...seen.keys()].some((k) => k.startsWith(`${id} 2`))).toBe(true);
    expect([...seen.keys()].some((k) => k.startsWith(`${id} 4`))).toBe(true);
  }
}, 120_000);

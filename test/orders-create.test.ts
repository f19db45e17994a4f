import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type Reply, type TestApp } from './support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

async function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
  return app.db.execute<T[]>(query, params);
}

async function counts(): Promise<{ orders: number; lineItems: number }> {
  const [row] = await sql<{ orders: string; line_items: string }>(
    'select (select count(*) from orders) as orders, (select count(*) from line_items) as line_items',
  );
  return { orders: Number(row.orders), lineItems: Number(row.line_items) };
}

async function storedOrder(id: string) {
  const [order] = await sql<{ id: string; customer_email: string; status: string; total_cents: string }>(
    'select id, customer_email, status, total_cents from orders where id = ?',
    [id],
  );
  const items = await sql<{ description: string; price_cents: string; quantity: number; position: number }>(
    'select description, price_cents, quantity, position from line_items where order_id = ? order by position',
    [id],
  );
  return (
    order && { ...order, total_cents: Number(order.total_cents), items: items.map((i) => ({ ...i, price_cents: Number(i.price_cents) })) }
  );
}

function expectProblem(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body?.code }).toEqual({ status, code });
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(reply.body).toMatchObject({ type: `https://order-up.example/problems/${code}`, status, code });
  expect(typeof reply.body.title).toBe('string');
  expect(typeof reply.body.detail).toBe('string');
}

const item = (overrides: Record<string, unknown> = {}) => ({ description: 'Tea', priceCents: 100, quantity: 1, ...overrides });
const items = (n: number) => Array.from({ length: n }, (_, i) => item({ description: `item ${i}` }));
const withItem = (overrides: Record<string, unknown>) => newOrder({ lineItems: [item(overrides)] });
const withoutKey = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

// [name, body (JSON value, or a raw string sent as is), path the first error must point at]
const invalidBodies: [string, unknown, string][] = [
  ['customerEmail is 255 characters', newOrder({ customerEmail: `${'a'.repeat(250)}@b.cd` }), '/customerEmail'],
  ['customerEmail contains a space', newOrder({ customerEmail: 'ada lovelace@example.com' }), '/customerEmail'],
  ['customerEmail contains a tab', newOrder({ customerEmail: 'ada@exa\tmple.com' }), '/customerEmail'],
  ['customerEmail has a trailing newline', newOrder({ customerEmail: 'ada@example.com\n' }), '/customerEmail'],
  ['customerEmail has no @', newOrder({ customerEmail: 'ada.example.com' }), '/customerEmail'],
  ['customerEmail has two @', newOrder({ customerEmail: 'ada@lovelace@example.com' }), '/customerEmail'],
  ['customerEmail has nothing before @', newOrder({ customerEmail: '@example.com' }), '/customerEmail'],
  ['customerEmail has nothing after @', newOrder({ customerEmail: 'ada@' }), '/customerEmail'],
  ['customerEmail is empty', newOrder({ customerEmail: '' }), '/customerEmail'],
  ['customerEmail is a number', newOrder({ customerEmail: 42 }), '/customerEmail'],
  ['customerEmail is null', newOrder({ customerEmail: null }), '/customerEmail'],
  ['customerEmail is missing', withoutKey(newOrder(), 'customerEmail'), '/customerEmail'],
  ['lineItems is empty', newOrder({ lineItems: [] }), '/lineItems'],
  ['lineItems has 101 items', newOrder({ lineItems: items(101) }), '/lineItems'],
  ['lineItems is an object', newOrder({ lineItems: item() }), '/lineItems'],
  ['lineItems is a string', newOrder({ lineItems: 'Tea' }), '/lineItems'],
  ['lineItems is missing', withoutKey(newOrder(), 'lineItems'), '/lineItems'],
  ['a line item is not an object', newOrder({ lineItems: ['Tea'] }), '/lineItems/0'],
  ['description is empty', withItem({ description: '' }), '/lineItems/0/description'],
  ['description is blank', withItem({ description: '   ' }), '/lineItems/0/description'],
  ['description is only a newline and a tab', withItem({ description: '\n\t' }), '/lineItems/0/description'],
  ['description is 201 characters', withItem({ description: 'x'.repeat(201) }), '/lineItems/0/description'],
  ['description is a number', withItem({ description: 7 }), '/lineItems/0/description'],
  ['description is missing', newOrder({ lineItems: [withoutKey(item(), 'description')] }), '/lineItems/0/description'],
  [
    'description repeats within the order',
    newOrder({ lineItems: [item(), item({ description: 'Mug' }), item()] }),
    '/lineItems/2/description',
  ],
  ['priceCents is 1.5', withItem({ priceCents: 1.5 }), '/lineItems/0/priceCents'],
  ['priceCents is a numeric string', withItem({ priceCents: '100' }), '/lineItems/0/priceCents'],
  ['priceCents is a word', withItem({ priceCents: 'ten' }), '/lineItems/0/priceCents'],
  ['priceCents is a boolean', withItem({ priceCents: true }), '/lineItems/0/priceCents'],
  ['priceCents is null', withItem({ priceCents: null }), '/lineItems/0/priceCents'],
  ['priceCents is 100000001', withItem({ priceCents: 100_000_001 }), '/lineItems/0/priceCents'],
  [
    'priceCents is -100000001',
    newOrder({ lineItems: [item({ priceCents: 100_000_000 }), item({ description: 'x', priceCents: -100_000_001 })] }),
    '/lineItems/1/priceCents',
  ],
  ['priceCents is huge (1e300)', withItem({ priceCents: 1e300 }), '/lineItems/0/priceCents'],
  ['priceCents is missing', newOrder({ lineItems: [withoutKey(item(), 'priceCents')] }), '/lineItems/0/priceCents'],
  ['quantity is 0', withItem({ quantity: 0 }), '/lineItems/0/quantity'],
  ['quantity is -1', withItem({ quantity: -1 }), '/lineItems/0/quantity'],
  ['quantity is 10001', withItem({ quantity: 10001 }), '/lineItems/0/quantity'],
  ['quantity is 2.5', withItem({ quantity: 2.5 }), '/lineItems/0/quantity'],
  ['quantity is a string', withItem({ quantity: '2' }), '/lineItems/0/quantity'],
  ['quantity is missing', newOrder({ lineItems: [withoutKey(item(), 'quantity')] }), '/lineItems/0/quantity'],
  ['id has a forbidden character', newOrder({ id: 'order/1' }), '/id'],
  ['id has a space', newOrder({ id: 'order 1' }), '/id'],
  ['id has a dot', newOrder({ id: 'order.1' }), '/id'],
  ['id is non-ASCII', newOrder({ id: 'ordér' }), '/id'],
  ['id is 65 characters', newOrder({ id: 'a'.repeat(65) }), '/id'],
  ['id is empty', newOrder({ id: '' }), '/id'],
  ['id is a number', newOrder({ id: 12 }), '/id'],
  ['id is null', newOrder({ id: null }), '/id'],
  ['an unknown top-level field is sent', newOrder({ coupon: 'FREE' }), '/coupon'],
  ['status is sent by the client', newOrder({ status: 'charged' }), '/status'],
  ['totalCents is sent by the client', newOrder({ totalCents: 0 }), '/totalCents'],
  ['cardToken is sent at creation', newOrder({ cardToken: 'tok_1' }), '/cardToken'],
  ['an unknown line item field is sent', withItem({ sku: 'T-1' }), '/lineItems/0/sku'],
  ['description contains a NUL character', withItem({ description: 'Tea\u0000' }), '/lineItems/0/description'],
  ['customerEmail contains a NUL character', newOrder({ customerEmail: 'ada\u0000@example.com' }), '/customerEmail'],
  [
    'description is an unpaired surrogate',
    '{"customerEmail":"a@b","lineItems":[{"description":"\\ud800","priceCents":1,"quantity":1}]}',
    '/lineItems/0/description',
  ],
  [
    'lineItems is nested 100000 arrays deep',
    `{"customerEmail":"a@b","lineItems":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    '/lineItems/0',
  ],
  ['the body is an array', [newOrder()], ''],
  ['the body is null', 'null', ''],
  ['the body is a JSON string', '"order"', ''],
  ['the body is a JSON number', '42', ''],
  ['the body is an empty object', {}, '/customerEmail'],
  ['the body is malformed JSON', '{"customerEmail": "a@b", ', ''],
  ['the body is a trailing-comma object', '{"customerEmail": "a@b",}', ''],
];

describe('when a create body breaks a validation rule, then it is refused with invalid_request and nothing is stored', () => {
  test.each(invalidBodies)('when %s, then 400 invalid_request pointing at the field', async (_name, body, path) => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', { body });
    expectProblem(reply, 400, 'invalid_request');
    expect(Array.isArray(reply.body.errors)).toBe(true);
    expect(reply.body.errors.length).toBeGreaterThan(0);
    for (const e of reply.body.errors) {
      expect(typeof e.path).toBe('string');
      expect(typeof e.message).toBe('string');
    }
    expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(await counts()).toEqual(before);
  });
});

describe('when the request itself is wrong, then the right 4xx and nothing is stored', () => {
  test('when the total is negative, then 400 invalid_total', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', {
      body: newOrder({ lineItems: [item({ priceCents: 500 }), item({ description: 'Discount', priceCents: -501 })] }),
    });
    expectProblem(reply, 400, 'invalid_total');
    expect(await counts()).toEqual(before);
  });

  test('when a quantity multiplies a discount below zero, then 400 invalid_total', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', {
      body: newOrder({
        lineItems: [item({ priceCents: 1000, quantity: 1 }), item({ description: 'Discount', priceCents: -100, quantity: 11 })],
      }),
    });
    expectProblem(reply, 400, 'invalid_total');
    expect(await counts()).toEqual(before);
  });

  test('when there is no body at all, then 400 invalid_request', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders');
    expectProblem(reply, 400, 'invalid_request');
    expect(reply.body.errors.length).toBeGreaterThan(0);
    expect(await counts()).toEqual(before);
  });

  test('when the body is empty with a JSON content type, then 400 invalid_request', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', { body: '', headers: { 'content-type': 'application/json' } });
    expectProblem(reply, 400, 'invalid_request');
    expect(await counts()).toEqual(before);
  });

  test('when the body is sent as text/plain, then 415 unsupported_media_type', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', { body: JSON.stringify(newOrder()), headers: { 'content-type': 'text/plain' } });
    expectProblem(reply, 415, 'unsupported_media_type');
    expect(await counts()).toEqual(before);
  });

  test('when the body is form-encoded, then 415 unsupported_media_type', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', {
      body: 'customerEmail=a%40b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(reply, 415, 'unsupported_media_type');
    expect(await counts()).toEqual(before);
  });

  test('when a JSON body has no content type, then 415 unsupported_media_type', async () => {
    const before = await counts();
    const res = await fetch(`${app.url}/orders`, { method: 'POST', body: new Blob([JSON.stringify(newOrder())]) });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('unsupported_media_type');
    expect(await counts()).toEqual(before);
  });

  test('when the body is over 1 MB, then 413 payload_too_large', async () => {
    const before = await counts();
    const body = newOrder({ lineItems: [item({ description: 'x'.repeat(1_100_000) })] });
    const reply = await app.call('POST', '/orders', { body });
    expectProblem(reply, 413, 'payload_too_large');
    expect(await counts()).toEqual(before);
  });

  test('when the body is JSON in a non-UTF-8 charset, then a 4xx and nothing is stored', async () => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', {
      body: JSON.stringify(newOrder()),
      headers: { 'content-type': 'application/json; charset=latin1' },
    });
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
    expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await counts()).toEqual(before);
  });

  test('when a bad body breaks several rules, then every error is listed with its path', async () => {
    const reply = await app.call('POST', '/orders', {
      body: { customerEmail: 'nope', lineItems: [item({ quantity: 0 }), item({ description: 'B', priceCents: 'x' })] },
    });
    expectProblem(reply, 400, 'invalid_request');
    const paths = reply.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/customerEmail', '/lineItems/0/quantity', '/lineItems/1/priceCents']));
  });
});

describe('when a create body sits on the edge of a rule, then it is accepted and stored as sent', () => {
  const valid: [string, Record<string, unknown>, number][] = [
    ['the email is test@test', newOrder({ customerEmail: 'test@test' }), 3300],
    ['the email is 254 characters', newOrder({ customerEmail: `${'a'.repeat(64)}@${'b'.repeat(189)}` }), 3300],
    ['the email has unicode', newOrder({ customerEmail: 'zoë@exämple.com' }), 3300],
    [
      'a discount keeps the total positive',
      newOrder({ lineItems: [item({ priceCents: 1000, quantity: 2 }), item({ description: 'Discount', priceCents: -500 })] }),
      1500,
    ],
    [
      'a discount brings the total to exactly zero',
      newOrder({ lineItems: [item({ priceCents: 1000 }), item({ description: 'Discount', priceCents: -1000 })] }),
      0,
    ],
    ['every price is zero', newOrder({ lineItems: [item({ priceCents: 0 })] }), 0],
    ['there are exactly 100 items', newOrder({ lineItems: items(100) }), 10000],
    ['there is exactly 1 item', newOrder({ lineItems: [item()] }), 100],
    ['the description is 200 characters', withItem({ description: 'd'.repeat(200) }), 100],
    ['the description is one character', withItem({ description: 'x' }), 100],
    ['the description is 200 emoji', withItem({ description: '🍵'.repeat(200) }), 100],
    [
      'descriptions are unicode and differ only in case',
      newOrder({ lineItems: [item({ description: 'Thé vert 緑茶' }), item({ description: 'thé vert 緑茶' })] }),
      200,
    ],
    ['the description has surrounding spaces', withItem({ description: '  Tea  ' }), 100],
    ['the price and quantity are at their maxima', withItem({ priceCents: 100_000_000, quantity: 10_000 }), 1_000_000_000_000],
    [
      '100 items at maximum price and quantity',
      newOrder({ lineItems: items(100).map((i) => ({ ...i, priceCents: 100_000_000, quantity: 10_000 })) }),
      100_000_000_000_000,
    ],
    [
      'the price is at its minimum, offset by others',
      newOrder({
        lineItems: [item({ priceCents: 100_000_000, quantity: 2 }), item({ description: 'Discount', priceCents: -100_000_000 })],
      }),
      100_000_000,
    ],
    ['the id is 64 characters', newOrder({ id: `A_-${'z9'.repeat(30)}0` }), 3300],
    ['the id is 1 character', newOrder({ id: 'Q' }), 3300],
  ];

  test.each(valid)('when %s, then 201 and the stored order matches', async (_name, body, total) => {
    const before = await counts();
    const reply = await app.call('POST', '/orders', { body });
    expect(reply.status).toBe(201);
    const order = reply.body.order;
    expect(order).toMatchObject({ customerEmail: body.customerEmail, status: 'pending', totalCents: total, lineItems: body.lineItems });
    if (body.id) expect(order.id).toBe(body.id);
    expect(reply.headers.get('location')).toBe(`/orders/${order.id}`);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    const lineItems = body.lineItems as { description: string; priceCents: number; quantity: number }[];
    const stored = await storedOrder(order.id);
    expect(stored).toMatchObject({ id: order.id, customer_email: body.customerEmail, status: 'pending', total_cents: total });
    expect(stored.items).toEqual(
      lineItems.map((li, position) => ({ description: li.description, price_cents: li.priceCents, quantity: li.quantity, position })),
    );
    expect(await counts()).toEqual({ orders: before.orders + 1, lineItems: before.lineItems + lineItems.length });
    // And it reads back the same.
    const got = await app.call('GET', `/orders/${order.id}`);
    expect(got.status).toBe(200);
    expect(got.body.order).toEqual(order);
  });

  test('when an order is created, then the answer has every field of the contract and timestamps in RFC 3339', async () => {
    const reply = await app.call('POST', '/orders', { body: newOrder() });
    expect(reply.status).toBe(201);
    const order = reply.body.order;
    expect(Object.keys(order).sort()).toEqual(
      [
        'cancelReason',
        'cancelledAt',
        'chargedAt',
        'createdAt',
        'customerEmail',
        'fulfilledAt',
        'id',
        'lineItems',
        'payment',
        'status',
        'totalCents',
        'updatedAt',
      ].sort(),
    );
    expect(order).toMatchObject({ chargedAt: null, fulfilledAt: null, cancelledAt: null, cancelReason: null, payment: null });
    expect(order.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(order.createdAt) - Date.now())).toBeLessThan(60_000);
    expect(order.updatedAt).toBe(order.createdAt);
  });
});

describe('when it comes to order IDs', () => {
  test('when the client id is already taken, then 409 order_exists and the first order is unchanged', async () => {
    const first = await app.call('POST', '/orders', { body: newOrder({ id: 'taken-1', customerEmail: 'first@example.com' }) });
    expect(first.status).toBe(201);
    const storedBefore = await storedOrder('taken-1');
    const before = await counts();
    const second = await app.call('POST', '/orders', {
      body: newOrder({ id: 'taken-1', customerEmail: 'second@example.com', lineItems: [item({ description: 'Other', priceCents: 1 })] }),
    });
    expectProblem(second, 409, 'order_exists');
    expect(await counts()).toEqual(before);
    expect(await storedOrder('taken-1')).toEqual(storedBefore);
    const got = await app.call('GET', '/orders/taken-1');
    expect(got.body.order).toEqual(first.body.order);
  });

  test('when the same id differs only in case, then both are distinct orders', async () => {
    expect((await app.call('POST', '/orders', { body: newOrder({ id: 'CaseId' }) })).status).toBe(201);
    expect((await app.call('POST', '/orders', { body: newOrder({ id: 'caseid' }) })).status).toBe(201);
    expect(await storedOrder('CaseId')).toBeDefined();
    expect(await storedOrder('caseid')).toBeDefined();
  });

  test('when two creates race with the same id, then exactly one gets 201 and the other 409, and one order is stored', async () => {
    for (let round = 0; round < 5; round++) {
      const id = `race-${round}`;
      const replies = await Promise.all([
        app.call('POST', '/orders', { body: newOrder({ id, customerEmail: 'a@example.com' }) }),
        app.call('POST', '/orders', { body: newOrder({ id, customerEmail: 'b@example.com', lineItems: [item({ description: 'Solo' })] }) }),
      ]);
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses).toEqual([201, 409]);
      const winner = replies.find((r) => r.status === 201)!;
      const loser = replies.find((r) => r.status === 409)!;
      expectProblem(loser, 409, 'order_exists');
      const stored = await storedOrder(id);
      expect(stored.customer_email).toBe(winner.body.order.customerEmail);
      expect(stored.items.map((i) => i.description)).toEqual(
        winner.body.order.lineItems.map((li: { description: string }) => li.description),
      );
    }
  });

  test('when the server makes ids, then they are URL-safe, at least 96 random bits, distinct, and never start with - or _', async () => {
    const replies = await Promise.all(Array.from({ length: 60 }, () => app.call('POST', '/orders', { body: newOrder() })));
    const ids = replies.map((r) => {
      expect(r.status).toBe(201);
      return r.body.order.id as string;
    });
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{15,63}$/); // 16 base64url characters carry 96 bits; never starts like a CLI option
      expect(encodeURIComponent(id)).toBe(id);
    }
    expect(new Set(ids).size).toBe(ids.length);
    const [row] = await sql<{ n: string }>('select count(*) as n from orders where id = any(?)', [ids]);
    expect(Number(row.n)).toBe(ids.length);
  });
});

describe('when an order is read', () => {
  test('when the id is unknown, then 404 order_not_found', async () => {
    const reply = await app.call('GET', '/orders/no-such-order');
    expectProblem(reply, 404, 'order_not_found');
    expect(await storedOrder('no-such-order')).toBeUndefined();
  });

  test.each([
    ['has a forbidden character', '/orders/bad.id'],
    ['is 65 characters', `/orders/${'a'.repeat(65)}`],
    ['has an encoded space', '/orders/a%20b'],
    ['has non-ASCII', '/orders/%C3%A9t%C3%A9'],
    ['is not valid percent-encoding', '/orders/%ZZ'],
    ['is truncated UTF-8', '/orders/%E0%A4%A'],
  ])('when the id %s, then 400 invalid_request at /path/id', async (_name, path) => {
    const reply = await app.call('GET', path);
    expectProblem(reply, 400, 'invalid_request');
    expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain('/path/id');
  });

  test('when an order is read, then its line items come back in the order sent', async () => {
    const lineItems = ['Zebra', 'Apple', 'Mango'].map((description, i) => item({ description, priceCents: i + 1 }));
    const created = await app.call('POST', '/orders', { body: newOrder({ lineItems }) });
    const got = await app.call('GET', `/orders/${created.body.order.id}`);
    expect(got.status).toBe(200);
    expect(got.body.order.lineItems).toEqual(lineItems);
  });

  test('when an order has been charged with a card token, then no response carries the token', async () => {
    // The token lives in the payments journal; write one there directly (charging is another suite's job).
    const created = await app.call('POST', '/orders', { body: newOrder() });
    const id = created.body.order.id;
    await sql(
      `insert into payments (id, order_id, kind, amount_cents, card_token, state, owner, created_at, updated_at)
       values (gen_random_uuid(), ?, 'charge', 3300, 'tok_secret_4242', 'failed', 0, now(), now())`,
      [id],
    );
    const got = await app.call('GET', `/orders/${id}`);
    expect(got.status).toBe(200);
    const text = JSON.stringify(got.body);
    expect(text).not.toMatch(/cardToken|card_token|tok_secret_4242/);
    expect(JSON.stringify(created.body)).not.toMatch(/cardToken|card_token/);
    const list = await app.call('GET', '/orders?limit=500', { staff: true });
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toMatch(/cardToken|card_token|tok_secret_4242/);
  });
});

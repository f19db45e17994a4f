import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { newOrder, startTestApp, STAFF_TOKEN, type Reply, type TestApp } from './support/app.js';

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

/** Ids of all stored orders, newest first (by insertion sequence), optionally of one status. */
async function storedIds(status?: string): Promise<string[]> {
  const rows = status
    ? await sql<{ id: string }>('select id from orders where status = ? order by seq desc', [status])
    : await sql<{ id: string }>('select id from orders order by seq desc');
  return rows.map((r) => r.id);
}

function expectProblem(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body?.code }).toEqual({ status, code });
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(reply.body).toMatchObject({ type: `https://order-up.example/problems/${code}`, status, code });
  expect(reply.body.orders).toBeUndefined();
}

async function create(overrides: Record<string, unknown> = {}): Promise<string> {
  const reply = await app.call('POST', '/orders', { body: newOrder(overrides) });
  expect(reply.status).toBe(201);
  return reply.body.order.id as string;
}

/** Creates `n` orders, `concurrency` at a time; returns their ids in creation order (roughly). */
async function createMany(n: number, concurrency = 20, overrides: () => Record<string, unknown> = () => ({})): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Math.min(concurrency, n - i);
    ids.push(...(await Promise.all(Array.from({ length: batch }, () => create(overrides())))));
  }
  return ids;
}

const list = (query = '', staff = true) => app.call('GET', `/orders${query}`, { staff });

/** Follows nextCursor to the end; returns every page's ids. */
async function pageThrough(query: string, onPage?: (page: number) => void | Promise<void>): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const after = cursor ? `${query ? '&' : '?'}cursor=${encodeURIComponent(cursor)}` : '';
    const reply: Reply = await list(`${query}${after}`);
    expect(reply.status).toBe(200);
    pages.push(reply.body.orders.map((o: { id: string }) => o.id));
    cursor = reply.body.nextCursor;
    await onPage?.(pages.length);
  } while (cursor !== null);
  return pages;
}

beforeAll(async () => {
  await createMany(130);
});

describe('when the staff token is missing or wrong, then 401 unauthorized and nothing is listed', () => {
  test.each<[string, Record<string, string>]>([
    ['no Authorization header', {}],
    ['a wrong bearer token', { authorization: 'Bearer not-the-token' }],
    ['a prefix of the token', { authorization: `Bearer ${STAFF_TOKEN.slice(0, -1)}` }],
    ['the token with a suffix', { authorization: `Bearer ${STAFF_TOKEN}x` }],
    ['the token under the Basic scheme', { authorization: `Basic ${STAFF_TOKEN}` }],
    ['Basic credentials', { authorization: `Basic ${Buffer.from(`staff:${STAFF_TOKEN}`).toString('base64')}` }],
    ['the bare token without a scheme', { authorization: STAFF_TOKEN }],
    ['Bearer with no token', { authorization: 'Bearer ' }],
    ['two tokens', { authorization: `Bearer ${STAFF_TOKEN} ${STAFF_TOKEN}` }],
  ])('when the request has %s, then 401 with WWW-Authenticate: Bearer', async (_name, headers) => {
    const reply = await app.call('GET', '/orders', { headers });
    expectProblem(reply, 401, 'unauthorized');
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(JSON.stringify(reply.body)).not.toMatch(/customer@example\.com/);
  });

  test('when the request is otherwise invalid too, then 401 still comes first', async () => {
    const reply = await app.call('GET', '/orders?limit=0&cursor=garbage');
    expectProblem(reply, 401, 'unauthorized');
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  });

  test('when the scheme is written in lower case with the right token, then it is accepted', async () => {
    const reply = await app.call('GET', '/orders?limit=1', { headers: { authorization: `bearer ${STAFF_TOKEN}` } });
    expect(reply.status).toBe(200);
  });
});

describe('when staff list orders', () => {
  test('when no limit is given, then 100 orders come back, newest first, with a cursor', async () => {
    const reply = await list();
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reply.body.orders).toHaveLength(100);
    expect(typeof reply.body.nextCursor).toBe('string');
    const ids = reply.body.orders.map((o: { id: string }) => o.id);
    expect(ids).toEqual((await storedIds()).slice(0, 100));
  });

  test.each([1, 37, 500])('when limit is %i, then at most that many orders come back', async (limit) => {
    const reply = await list(`?limit=${limit}`);
    expect(reply.status).toBe(200);
    const all = await storedIds();
    expect(reply.body.orders.map((o: { id: string }) => o.id)).toEqual(all.slice(0, limit));
    expect(reply.body.nextCursor === null).toBe(all.length <= limit);
  });

  test.each(['0', '501', '-1', 'abc', '1.5', '', '5000000000000000000000'])(
    'when limit is "%s", then 400 invalid_request at /query/limit',
    async (limit) => {
      const reply = await list(`?limit=${limit}`);
      expectProblem(reply, 400, 'invalid_request');
      expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain('/query/limit');
    },
  );

  test('when limit is given twice, then 400 invalid_request', async () => {
    expectProblem(await list('?limit=2&limit=3'), 400, 'invalid_request');
  });

  test.each(['bogus', 'PENDING', ''])('when status is "%s", then 400 invalid_request at /query/status', async (status) => {
    const reply = await list(`?status=${status}`);
    expectProblem(reply, 400, 'invalid_request');
    expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain('/query/status');
    // The message names the values that would do, not just "one of the allowed values".
    expect(reply.body.errors).toContainEqual({ path: '/query/status', message: 'must be one of: pending, charged, fulfilled, cancelled' });
  });

  test('when an unknown query parameter is sent, then 400 invalid_request naming it', async () => {
    const reply = await list('?sort=asc');
    expectProblem(reply, 400, 'invalid_request');
    expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain('/query/sort');
  });

  const forged = (seq: string) => `o1.${Buffer.from(seq).toString('base64url')}`;
  test.each([
    ['garbage', 'garbage'],
    ['base64 of nonsense', Buffer.from('{"seq":1}').toString('base64url')],
    ['a cursor with a negative position', forged('-5')],
    ['a cursor with position zero', forged('0')],
    ['a cursor beyond the database integer range', forged('9999999999999999999')],
    ['a cursor with 30 digits', forged('1'.repeat(30))],
    ['201 characters', 'a'.repeat(201)],
  ])('when the cursor is %s, then 400 invalid_request at /query/cursor', async (_name, cursor) => {
    const reply = await list(`?cursor=${encodeURIComponent(cursor)}`);
    expectProblem(reply, 400, 'invalid_request');
    expect(reply.body.errors.map((e: { path: string }) => e.path)).toContain('/query/cursor');
  });

  test('when the last page is reached, then nextCursor is null and every order was seen once, newest first', async () => {
    const pages = await pageThrough('?limit=50');
    const ids = pages.flat();
    expect(ids).toEqual(await storedIds());
    expect(pages.slice(0, -1).every((p) => p.length === 50)).toBe(true);
    expect(pages[pages.length - 1].length).toBeGreaterThan(0);
  });

  test('when the orders fit one page exactly, then nextCursor is null on it', async () => {
    const total = (await storedIds()).length;
    const reply = await list(`?limit=${total}`);
    expect(reply.body.orders).toHaveLength(total);
    expect(reply.body.nextCursor).toBeNull();
  });

  test('when filtering by status, then only orders of that status come back, newest first, across pages', async () => {
    const all = await storedIds();
    // Statuses are set in the database directly: moving orders on is other suites' business.
    const charged = all.filter((_, i) => i % 3 === 0);
    const cancelled = all.filter((_, i) => i % 7 === 1);
    await sql(`update orders set status = 'charged' where id = any(?)`, [charged]);
    await sql(`update orders set status = 'cancelled' where id = any(?)`, [cancelled]);
    try {
      for (const status of ['charged', 'cancelled', 'pending', 'fulfilled']) {
        const pages = await pageThrough(`?status=${status}&limit=11`);
        const ids = pages.flat();
        expect(ids).toEqual(await storedIds(status));
        if (status === 'fulfilled') expect(ids).toEqual([]);
        const reply = await list(`?status=${status}&limit=500`);
        expect(reply.body.orders.every((o: { status: string }) => o.status === status)).toBe(true);
      }
    } finally {
      await sql(`update orders set status = 'pending'`);
    }
  });

  test('when a page holds 100 orders of 3 items each, then every order comes with all its items in order', async () => {
    const made = await createMany(100, 25, () => ({
      lineItems: [
        { description: `A ${Math.random()}`, priceCents: 1, quantity: 1 },
        { description: 'B', priceCents: 2, quantity: 2 },
        { description: 'C', priceCents: 3, quantity: 3 },
      ],
    }));
    const reply = await list('?limit=100');
    expect(reply.status).toBe(200);
    const orders = reply.body.orders as {
      id: string;
      lineItems: { description: string; priceCents: number; quantity: number }[];
      totalCents: number;
    }[];
    expect(new Set(orders.map((o) => o.id))).toEqual(new Set(made));
    const stored = await sql<{ order_id: string; description: string; price_cents: string; quantity: number }>(
      'select order_id, description, price_cents, quantity from line_items where order_id = any(?) order by order_id, position',
      [made],
    );
    for (const order of orders) {
      expect(order.lineItems).toHaveLength(3);
      expect(order.lineItems.map((li) => li.description).slice(1)).toEqual(['B', 'C']);
      expect(order.totalCents).toBe(1 + 4 + 9);
      expect(order.lineItems).toEqual(
        stored
          .filter((s) => s.order_id === order.id)
          .map((s) => ({ description: s.description, priceCents: Number(s.price_cents), quantity: s.quantity })),
      );
    }
  });
});

describe('when orders arrive while staff page through the list', () => {
  test('when paging with limit 37 while orders are created concurrently, then every earlier order is seen exactly once', async () => {
    const existing = (await storedIds()).length;
    if (existing < 250) await createMany(250 - existing);
    const before = await storedIds();
    expect(before.length).toBeGreaterThanOrEqual(250);

    let stop = false;
    const createdDuring: string[] = [];
    const startedAfterFirstPage: Promise<string>[] = [];
    let firstPageSeen = false;
    const writer = (async () => {
      while (!stop) {
        const p = create();
        if (firstPageSeen) startedAfterFirstPage.push(p);
        createdDuring.push(await p);
      }
    })();
    const writer2 = (async () => {
      while (!stop) {
        const p = create();
        if (firstPageSeen) startedAfterFirstPage.push(p);
        createdDuring.push(await p);
      }
    })();

    let pages: string[][];
    try {
      pages = await pageThrough('?limit=37', async () => {
        firstPageSeen = true;
        // Let some inserts land between pages.
        await new Promise((r) => setTimeout(r, 5));
      });
    } finally {
      stop = true;
      await Promise.all([writer, writer2]);
    }
    const seen = pages.flat();
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(before.length / 37));
    expect(createdDuring.length).toBeGreaterThan(0);

    // No id twice.
    expect(new Set(seen).size).toBe(seen.length);
    // Every order that existed before paging started is seen, exactly once, in newest-first order.
    const seenSet = new Set(seen);
    expect(before.filter((id) => !seenSet.has(id))).toEqual([]);
    expect(seen.filter((id) => before.includes(id))).toEqual(before);
    // Orders whose creation began after the first page came back sort before the cursor: never on later pages.
    const late = new Set(await Promise.all(startedAfterFirstPage));
    expect(
      pages
        .slice(1)
        .flat()
        .filter((id) => late.has(id)),
    ).toEqual([]);
    // And the stored state agrees: everything created is there.
    const after = new Set(await storedIds());
    expect([...before, ...createdDuring].every((id) => after.has(id))).toBe(true);
  });
});

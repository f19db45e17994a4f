import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { newOrder, startTestApp, type TestApp } from './support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

test('when an order is created, then it can be read back', async () => {
  const created = await app.call('POST', '/orders', { body: newOrder() });
  expect(created.status).toBe(201);
  const got = await app.call('GET', `/orders/${created.body.order.id}`);
  expect(got.status).toBe(200);
  expect(got.body.order.totalCents).toBe(3300);
});

// The charge service client's queue (src/upstream/charge-service.ts) says why it has no place -
// it returns the reason, the domain turns it into the answer (see test/charge.test.ts for those).
import { describe, expect, test } from '@jest/globals';
import type { ChargeLock } from '../../src/upstream/charge-lock.js';
import { ChargeService } from '../../src/upstream/charge-service.js';

/** A lock that is always free: no database. */
const freeLock = {
  acquire: async () => {},
  keepOrRelease: async () => {},
  release: async () => {},
  close: async () => {},
} as unknown as ChargeLock;

describe('ChargeService.reserve', () => {
  test('when no charge service is configured, then the place is refused as not_configured and sending it calls nothing', async () => {
    const svc = new ChargeService(undefined, 1000, 10, freeLock);
    const slot = svc.reserve();
    expect(slot.refused).toEqual({ reason: 'not_configured' });
    expect(await slot.send({ cardToken: 'tok_visa', amountCents: 100 })).toEqual({
      kind: 'failed',
      reason: 'no charge service is configured; nothing was sent',
    });
    expect(svc.waiting).toBe(0);
    await svc.close();
  });

  test('when a place would have to wait and the waiting room is full, then it is refused as queue_full with a time to retry', async () => {
    // Nothing is ever sent: the one place taken is given up again.
    const svc = new ChargeService('http://127.0.0.1:9', 1000, 0, freeLock);
    const first = svc.reserve();
    expect(first.refused).toBeUndefined();
    const second = svc.reserve();
    expect(second.refused).toEqual({ reason: 'queue_full', retryAfterSeconds: 1 });
    first.cancel();
    await svc.drain();
    const third = svc.reserve();
    expect(third.refused).toBeUndefined(); // free again once the queue is idle
    third.cancel();
    await svc.close();
  });
});

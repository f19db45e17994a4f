import { setTimeout as sleep } from 'node:timers/promises';

/** What `within` answers when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `work`'s result, or TIMED_OUT when it has not settled within `ms`; a rejection within the time
 * rejects. `work` itself goes on (whoever holds it may still wait for it); the timer ends as soon as
 * either settles.
 */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  const timer = new AbortController();
  try {
    return await Promise.race([work, sleep(ms, TIMED_OUT, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

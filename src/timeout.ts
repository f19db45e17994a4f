/** What `within` answers when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `work`'s result, or TIMED_OUT when it has not settled within `ms`; a rejection within the time
 * rejects. `work` itself goes on (whoever holds it may still wait for it); the timer ends as soon as
 * either settles.
 */
export function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  // A plain timer, cleared when either settles: on the charge path this runs twice per charge, and an
  // aborted timers/promises sleep would build an AbortError each time.
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

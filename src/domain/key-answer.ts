import type { KeyAnswer } from '../db/idempotency-repo.js';
import type { Answer, DomainContext, Outcome } from './context.js';

// An Idempotency-Key's answer travels with the statement that writes the operation's outcome
// (domain/idempotency.ts runs the key; exclusive.ts and orders.ts write outcomes).

/**
 * The key's answer to an outcome, for the statement that writes the outcome - or none, when the
 * request has no key, its answer is stored already, or is not kept. `stored()` notes that the
 * statement went through.
 */
export function answerWith(ctx: DomainContext, outcome: () => Outcome): { answer: KeyAnswer; stored(): void } | undefined {
  const attempt = ctx.attempt;
  if (!attempt || attempt.recorded) return undefined;
  const answer = attempt.answerFor(outcome());
  if (!answer) return undefined;
  return {
    answer: {
      ref: attempt.ref,
      owner: attempt.owner,
      ttlMs: attempt.ttlMs,
      answer: toStored(answer),
      fingerprint: attempt.taken ? undefined : attempt.fingerprint,
    },
    stored: () => (attempt.recorded = answer),
  };
}

export const toStored = (answer: Answer) => ({
  status: answer.status,
  body: JSON.stringify(answer.body),
  location: answer.location ?? null,
});

/** The statement that was to take the request's key found it taken by another request: nothing was done. */
export class KeyHeld extends Error {
  constructor() {
    super('the Idempotency-Key is held by another request');
  }
}

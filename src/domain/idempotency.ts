import type { KeyRef } from '../db/idempotency-repo.js';
import type { Answer, DomainContext, KeyedAttempt } from './context.js';
import { KeyHeld, toStored } from './key-answer.js';
import { AppError } from './errors.js';
import { isOwnerAlive, recoverOwner } from './exclusive.js';

export type { Answer, KeyedAttempt, Outcome } from './context.js';

export interface KeyedRequest extends KeyRef {
  /** What the request asks for (method, path, canonical body): the same key must always ask for the same. */
  fingerprint: string;
}

/**
 * Runs a request at most once per caller and key (the spec's "Retrying safely"). The first request
 * with a key takes it and runs (`ctx.attempt`); its answer is stored with the key - in the statement
 * that writes the operation's outcome where there is one (`answerWith`), else right after (a key
 * is one attempt: a decline or a timeout is its answer too); when the answer is not kept
 * (`answerFor` says null: the request may well succeed if simply sent again), the key is let go
 * and the next request with it runs as new. A later request with the key and the same fingerprint gets the stored answer back
 * without anything being done; another fingerprint is 422 idempotency_key_reused; while the first
 * still runs, 409 idempotency_key_in_use - unless the process running it is gone, whose work is then
 * recovered (its payments in doubt, its keys freed) and this request runs.
 */
export async function runOnce(
  ctx: DomainContext,
  request: KeyedRequest,
  ttlMs: number,
  run: () => Promise<Answer>,
  answerFor: KeyedAttempt['answerFor'],
  /** The operation takes the key in its own statement (a create: domain/orders.ts). */
  takesKeyItself = false,
): Promise<{ answer: Answer; replayed: boolean }> {
  const owner = ctx.services.processKey;
  // Marked before the key is taken, so another request of this process never mistakes it for a
  // key left over from a failed release.
  const mark = keyMark(request);
  const active = ctx.services.activeKeys;
  active.set(mark, (active.get(mark) ?? 0) + 1);
  const done = () => {
    const left = (active.get(mark) ?? 1) - 1;
    if (left === 0) active.delete(mark);
    else active.set(mark, left);
  };
  try {
    return await takeAndRun(ctx, request, owner, ttlMs, run, answerFor, takesKeyItself);
  } finally {
    // A key whose answer is still being written stays this process's running key until it is.
    if (ctx.attempt?.background) void ctx.attempt.background.finally(done);
    else done();
  }
}

async function takeAndRun(
  ctx: DomainContext,
  request: KeyedRequest,
  owner: number,
  ttlMs: number,
  run: () => Promise<Answer>,
  answerFor: KeyedAttempt['answerFor'],
  takesKeyItself: boolean,
): Promise<{ answer: Answer; replayed: boolean }> {
  const attempt = (taken: boolean): KeyedAttempt => ({
    ref: { caller: request.caller, key: request.key },
    owner,
    ttlMs,
    fingerprint: request.fingerprint,
    taken,
    answerFor,
  });
  // An operation that takes the key in its own statement goes first; only a key already there
  // (KeyHeld: a replay, a request still running, another request's key) costs the take below.
  if (takesKeyItself) {
    const first = await runAttempt(ctx, request, attempt(false), run);
    if (first) return first;
  }
  for (let tries = 0; ; tries += 1) {
    const held = await ctx.db.idempotency.take(request, request.fingerprint, owner, ttlMs);
    if (held.kind === 'taken') break;
    if (held.fingerprint !== request.fingerprint) {
      throw new AppError(
        'idempotency_key_reused',
        'This Idempotency-Key was used for a different request (another method, path or body). Use a new key for a new request.',
      );
    }
    if (held.kind === 'done') {
      const { status, body, location } = held.answer;
      return { answer: { status, body: JSON.parse(body), location: location ?? undefined }, replayed: true };
    }
    if (tries === 0 && (await abandoned(ctx, request, held.owner))) continue;
    throw new AppError('idempotency_key_in_use', 'The first request with this Idempotency-Key is still running; try again in a moment.', {
      retryAfterSeconds: 1,
    });
  }
  const answered = await runAttempt(ctx, request, attempt(true), run);
  if (!answered) throw new Error('a taken Idempotency-Key was found held by another request');
  return answered;
}

/**
 * Runs the request under `attempt` and stores its answer where no outcome statement did; undefined
 * when the key, not yet taken, turned out to be held by another request (nothing was done).
 */
async function runAttempt(
  ctx: DomainContext,
  request: KeyedRequest,
  attempt: KeyedAttempt,
  run: () => Promise<Answer>,
): Promise<{ answer: Answer; replayed: false } | undefined> {
  const { owner, ttlMs } = attempt;
  ctx.attempt = attempt;
  let answer: Answer;
  try {
    answer = await run();
  } catch (err) {
    if (err instanceof KeyHeld) return undefined;
    // Stored with the outcome already; or still being written (the key stays running until it is).
    if (attempt.recorded) return { answer: attempt.recorded, replayed: false };
    if (attempt.background) throw err;
    const kept = attempt.answerFor({ error: err });
    if (!kept) {
      if (attempt.taken) await letGo(ctx, request, owner);
      throw err;
    }
    answer = kept;
  }
  if (attempt.recorded) return { answer: attempt.recorded, replayed: false };
  // An answer no outcome statement carried (a refusal, an operation already done): stored on its own
  // - taking the key first when the operation did not get that far.
  try {
    const taken = attempt.taken || (await ctx.db.idempotency.take(request, request.fingerprint, owner, ttlMs)).kind === 'taken';
    if (!taken || !(await ctx.db.idempotency.record({ ref: attempt.ref, owner, ttlMs, answer: toStored(answer) }))) {
      ctx.log.warn(
        { key: request.key },
        'an idempotency key was taken or recovered by another request meanwhile; this answer is not stored',
      );
    }
  } catch (err) {
    // The answer is known and goes to the caller; a retry with the key may run again, which the
    // order's own state makes safe (no charge or refund twice).
    ctx.log.error({ err, key: request.key }, 'could not store the answer of an idempotency key');
    await letGo(ctx, request, owner);
  }
  return { answer, replayed: false };
}

const keyMark = (ref: KeyRef) => `${ref.caller}\u0000${ref.key}`;

/**
 * Whether a running key is left over rather than running: its process is gone (then its work is
 * recovered, which frees the key), or it is this process's own and no request of ours runs it (a
 * release that failed; then it is freed here).
 */
async function abandoned(ctx: DomainContext, ref: KeyRef, owner: number): Promise<boolean> {
  if (ctx.services.lease.isOwn(owner)) {
    // Our own requests with this key count themselves in activeKeys: more than one means it runs.
    if ((ctx.services.activeKeys.get(keyMark(ref)) ?? 0) > 1) return false;
    await ctx.db.idempotency.release(ref, owner);
    return true;
  }
  if (await isOwnerAlive(ctx, owner)) return false;
  await recoverOwner(ctx, owner);
  return true;
}

async function letGo(ctx: DomainContext, request: KeyRef, owner: number): Promise<void> {
  await ctx.db.idempotency.release(request, owner).catch((err: unknown) => {
    ctx.log.error({ err, key: request.key }, 'could not release an idempotency key; it is freed when it expires or this process stops');
  });
}

const PURGE_BATCH = 500;

/** Deletes expired answers, a small batch per statement so no request waits behind a long delete. */
export async function purgeExpiredKeys(ctx: DomainContext): Promise<number> {
  let purged = 0;
  for (;;) {
    const n = await ctx.db.idempotency.purgeExpired(PURGE_BATCH);
    purged += n;
    if (n < PURGE_BATCH) return purged;
  }
}

import type { KeyRef } from '../db/idempotency-repo.js';
import type { DomainContext } from './context.js';
import { AppError } from './errors.js';
import { isOwnerAlive, recoverOwner } from './exclusive.js';

/** A final answer, as the caller gets it and as a replay gives it back. */
export interface Answer {
  status: number;
  body: unknown;
  location?: string;
}

export interface KeyedRequest extends KeyRef {
  /** What the request asks for (method, path, canonical body): the same key must always ask for the same. */
  fingerprint: string;
}

/**
 * Runs a request at most once per caller and key (the spec's "Retrying safely"). The first request
 * with a key takes it and runs; the answer `run` returns is stored with the key (a key is one
 * attempt: a decline or a timeout is its answer too); when `run` throws, the key is let go and the
 * next request with it runs as new. A later request with the key and the same fingerprint gets the stored answer back
 * without anything being done; another fingerprint is 422 idempotency_key_reused; while the first
 * still runs, 409 idempotency_key_in_use - unless the process running it is gone, whose work is then
 * recovered (its payments in doubt, its keys freed) and this request runs.
 */
export async function runOnce(
  ctx: DomainContext,
  request: KeyedRequest,
  ttlMs: number,
  run: () => Promise<Answer>,
): Promise<{ answer: Answer; replayed: boolean }> {
  const owner = ctx.services.processKey;
  // Marked before the key is taken, so another request of this process never mistakes it for a
  // key left over from a failed release.
  const mark = keyMark(request);
  const active = ctx.services.activeKeys;
  active.set(mark, (active.get(mark) ?? 0) + 1);
  try {
    return await takeAndRun(ctx, request, owner, ttlMs, run);
  } finally {
    const left = (active.get(mark) ?? 1) - 1;
    if (left === 0) active.delete(mark);
    else active.set(mark, left);
  }
}

async function takeAndRun(
  ctx: DomainContext,
  request: KeyedRequest,
  owner: number,
  ttlMs: number,
  run: () => Promise<Answer>,
): Promise<{ answer: Answer; replayed: boolean }> {
  for (let attempt = 0; ; attempt += 1) {
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
    if (attempt === 0 && (await abandoned(ctx, request, held.owner))) continue;
    throw new AppError('idempotency_key_in_use', 'The first request with this Idempotency-Key is still running; try again in a moment.', { retryAfterSeconds: 1 });
  }

  let answer: Answer;
  try {
    answer = await run();
  } catch (err) {
    await letGo(ctx, request, owner);
    throw err;
  }
  try {
    const stored = { status: answer.status, body: JSON.stringify(answer.body), location: answer.location ?? null };
    if (!(await ctx.db.idempotency.record(request, owner, stored, ttlMs))) {
      ctx.log.warn({ key: request.key }, 'an idempotency key was recovered while its request ran; its answer is not stored');
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

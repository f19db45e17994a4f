import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Operation } from 'openapi-backend';
import { AppError } from '../domain/errors.js';
import { runOnce, type Answer, type Outcome } from '../domain/idempotency.js';
import type { DomainContext } from '../domain/context.js';
import { problemFor } from './problem.js';
import { sendAnswer } from './respond.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Whether the operation declares the Idempotency-Key header in the spec. */
export const takesIdempotencyKey = (operation: Operation) =>
  (operation.parameters ?? []).some((p) => 'in' in p && p.in === 'header' && p.name.toLowerCase() === IDEMPOTENCY_HEADER);

/**
 * Answers that belong to the key (its attempt ran and this is how it ended) and those that do not:
 * the request was refused before anything ran (400, 401), or the same request may well succeed in
 * a moment (409 operation_in_progress, 503) - then the key is let go - or something broke (500).
 */
function kept(err: unknown): err is AppError {
  if (!(err instanceof AppError) || err.code === 'operation_in_progress') return false;
  return ![400, 401, 500, 503].includes(problemFor(err).problem.status);
}

/** JSON with object keys sorted at every level: semantically equal bodies read the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? '';
}

/**
 * Runs a handler under the request's Idempotency-Key (the spec's "Retrying safely"): the key
 * belongs to its caller - the staff holder on staff endpoints, the public on public ones - and is
 * bound to the request's method, path and canonical JSON body. A replay gets the stored answer with
 * `Idempotent-Replayed: true`.
 */
export async function answerOnce(
  ctx: DomainContext,
  key: string,
  caller: string,
  ttlMs: number,
  req: Request,
  res: Response,
  op: { run(): Promise<unknown>; present(result: unknown): Answer; takesKeyItself?: boolean },
): Promise<void> {
  const fingerprint = createHash('sha256')
    .update(`${req.method} ${req.path}\n${canonical(req.body)}`)
    .digest('hex');
  const answerFor = (outcome: Outcome): Answer | null => {
    if ('result' in outcome) return op.present(outcome.result);
    if (!kept(outcome.error)) return null;
    const { problem } = problemFor(outcome.error);
    return { status: problem.status, body: problem };
  };
  const { answer, replayed } = await runOnce(
    ctx,
    { caller, key, fingerprint },
    ttlMs,
    async () => op.present(await op.run()),
    answerFor,
    op.takesKeyItself,
  );
  if (replayed) res.setHeader('Idempotent-Replayed', 'true');
  sendAnswer(res, answer);
}

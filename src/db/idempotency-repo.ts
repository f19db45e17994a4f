import type { Queryable } from './database.js';

// Stored answers for Idempotency-Key. A key belongs to its caller; while its first request runs it
// is `running` and owned by that process's lease key (so recovery can free it when the process
// dies); then it is `done` with the answer, until it expires.

export interface KeyRef {
  caller: string;
  key: string;
}

export interface StoredAnswer {
  status: number;
  /** The JSON body, as text. */
  body: string;
  location: string | null;
}

/** A key's answer, to be stored in the same statement as the outcome it answers (claims-repo, orders-repo). */
export interface KeyAnswer {
  ref: KeyRef;
  /** The lease key the key is running under: only that process's running key takes the answer. */
  owner: number;
  /** How long the answer is kept, from when the key was taken. */
  ttlMs: number;
  answer: StoredAnswer;
  /** Set when the key is not taken yet: the statement takes it, already answered (`takeAnswerCte`). */
  fingerprint?: string;
}

/**
 * A CTE `keyed` storing `a`'s answer on its running key, when `guard` (SQL) holds - e.g. that the
 * outcome's own write happened. Its parameters are appended to `values`.
 */
export function recordAnswerCte(values: unknown[], a: KeyAnswer, guard = 'true'): string {
  const p = (v: unknown) => `$${values.push(v)}`;
  return `keyed as (
    update idempotency_keys set state = 'done', owner = null, status = ${p(a.answer.status)}, body = ${p(a.answer.body)},
      location = ${p(a.answer.location)}, expires_at = created_at + make_interval(secs => ${p(a.ttlMs)}::double precision / 1000)
    where caller = ${p(a.ref.caller)} and key = ${p(a.ref.key)} and state = 'running' and owner = ${p(a.owner)} and ${guard}
    returning key)`;
}

/**
 * A CTE `keyed` taking a key that is not taken yet, already `done` with `a`'s answer; it returns no
 * row when the key exists (then the statement must do nothing else: make the rest depend on it).
 */
export function takeAnswerCte(values: unknown[], a: KeyAnswer & { fingerprint: string }): string {
  const p = (v: unknown) => `$${values.push(v)}`;
  return `keyed as (
    insert into idempotency_keys (caller, key, fingerprint, state, owner, status, body, location, created_at, expires_at)
    values (${p(a.ref.caller)}, ${p(a.ref.key)}, ${p(a.fingerprint)}, 'done', null, ${p(a.answer.status)}, ${p(a.answer.body)},
      ${p(a.answer.location)}, now(), now() + make_interval(secs => ${p(a.ttlMs)}::double precision / 1000))
    on conflict (caller, key) do nothing
    returning key)`;
}

export type Taken =
  /** The key is ours now: run the request. */
  | { kind: 'taken' }
  /** The key's request is still running, in the process with lease key `owner`. */
  | { kind: 'running'; fingerprint: string; owner: number }
  | { kind: 'done'; fingerprint: string; answer: StoredAnswer };

interface KeyRow {
  taken: boolean;
  fingerprint: string | null;
  state: 'running' | 'done' | null;
  owner: number | null;
  status: number | null;
  body: string | null;
  location: string | null;
}

/**
 * How long a key stays `running` at most: should its process live on but fail to store or release
 * it (the database away at that moment), the key frees itself after this, not after the whole TTL.
 * Longer than any request runs (the charge queue's wait plus three upstream timeouts).
 */
const RUNNING_MS = 15 * 60_000;

export class IdempotencyRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Takes the key for a new request - or, when it is held, says by what. A key past its expiry
   * counts as free (whether or not it has been purged yet), and so does a `running` key past
   * RUNNING_MS. One statement; under READ COMMITTED a
   * key another transaction committed after this statement began is invisible to its read, so that
   * rare case is asked again.
   */
  async take(ref: KeyRef, fingerprint: string, owner: number, ttlMs: number): Promise<Taken> {
    for (let attempt = 1; ; attempt += 1) {
      const rows = await this.db.query<KeyRow>(
        `with taken as (
           insert into idempotency_keys as k (caller, key, fingerprint, state, owner, created_at, expires_at)
           values ($1, $2, $3, 'running', $4, now(), now() + make_interval(secs => $5::double precision / 1000))
           on conflict (caller, key) do update set fingerprint = excluded.fingerprint, state = 'running', owner = excluded.owner,
             status = null, body = null, location = null, created_at = excluded.created_at, expires_at = excluded.expires_at
           where k.expires_at <= now()
           returning 1)
         select true as taken, null as fingerprint, null as state, null::int as owner, null::int as status, null as body, null as location
         from taken
         union all
         select false, k.fingerprint, k.state, k.owner, k.status, k.body, k.location
         from idempotency_keys k where k.caller = $1 and k.key = $2 and k.expires_at > now() and not exists (select 1 from taken)`,
        [ref.caller, ref.key, fingerprint, owner, Math.min(ttlMs, RUNNING_MS)],
      );
      const row = rows[0];
      if (!row) {
        if (attempt < 5) continue;
        throw new Error('an idempotency key kept changing while it was taken');
      }
      if (row.taken) return { kind: 'taken' };
      if (row.state === 'running') return { kind: 'running', fingerprint: row.fingerprint!, owner: row.owner! };
      return { kind: 'done', fingerprint: row.fingerprint!, answer: { status: row.status!, body: row.body!, location: row.location } };
    }
  }

  /**
   * Stores the answer of the key's request, kept for `ttlMs` from when the key was taken; false when
   * the key was no longer this owner's (recovered meanwhile).
   */
  async record(answer: KeyAnswer): Promise<boolean> {
    const values: unknown[] = [];
    const rows = await this.db.query<{ key: string }>(`with ${recordAnswerCte(values, answer)} select key from keyed`, values);
    return rows.length === 1;
  }

  /** Lets go of a running key whose answer is not kept: the next request with it runs as new. */
  async release(ref: KeyRef, owner: number): Promise<void> {
    await this.db.query(`delete from idempotency_keys where caller = $1 and key = $2 and state = 'running' and owner = $3`, [
      ref.caller,
      ref.key,
      owner,
    ]);
  }

  /** Frees every key a process that is gone left running (see recoverOwnerWork). */
  async releaseOwner(owner: number): Promise<number> {
    const rows = await this.db.query<{ key: string }>(`delete from idempotency_keys where state = 'running' and owner = $1 returning key`, [
      owner,
    ]);
    return rows.length;
  }

  /** Deletes up to `limit` expired answers; returns how many. Small batches keep each statement short. */
  async purgeExpired(limit: number): Promise<number> {
    const rows = await this.db.query<{ key: string }>(
      `delete from idempotency_keys where (caller, key) in (
         select caller, key from idempotency_keys where state = 'done' and expires_at <= now() limit $1 for update skip locked)
       returning key`,
      [limit],
    );
    return rows.length;
  }
}

import http from 'node:http';
import axios, { type AxiosInstance } from 'axios';
import PQueue from 'p-queue';
import type { ChargeLock } from './charge-lock.js';
import { NO_CHARGE_METRICS, type ChargeKind, type ChargeMetrics } from '../metrics.js';
import { TIMED_OUT, within } from '../timeout.js';

/** What one call to POST /charge came to. */
export type ChargeOutcome =
  | { kind: 'succeeded' }
  /** The service answered and refused (4xx): nothing happened. */
  | { kind: 'declined'; status: number }
  /** Nothing happened: another status (`status`), or the request never left (connection refused). */
  | { kind: 'failed'; reason: string; status?: number }
  /** The request may have reached the service and we don't know what it did. */
  | { kind: 'in_doubt'; reason: 'timeout' | 'reset' };

export interface ChargeRequest {
  cardToken: string;
  amountCents: number;
}

export interface SendOptions {
  /** Asked when the place's turn comes: false (e.g. the process lost the lease its work was recorded under) sends nothing. */
  mayCall?: () => boolean;
  /** What became of a call that had already been answered as timed out (for the staff's in-doubt record); a drain waits for it. */
  onLateAnswer?: (late: LateAnswer) => Promise<void>;
}

/** What became of a call after it was answered as timed out. */
export type LateAnswer =
  /** The service answered after all (any HTTP status): `outcome` says what, `afterMs` after the timeout. */
  | { answered: true; outcome: Exclude<ChargeOutcome, { kind: 'in_doubt' }>; afterMs: number }
  /**
   * It did not: the extra wait (`afterMs`) ran out and the request was given up (`gaveUp`), the
   * connection broke without an answer, or the request never left (`outcome` failed).
   */
  | { answered: false; outcome: ChargeOutcome; afterMs: number; gaveUp: boolean };

/** Why `reserve` found no place: nothing will be sent (the domain says what that means to its caller). */
export type NoPlace =
  /** There is no charge service to call (CHARGE_SERVICE_URL is not set). */
  | { reason: 'not_configured' }
  /** Too many calls wait already; a place is likely free again after `retryAfterSeconds`. */
  | { reason: 'queue_full'; retryAfterSeconds: number };

/** A place in the queue, taken before the journal is written so a full queue refuses with nothing written. */
export interface QueueSlot {
  /** Set when no place could be had: `send` then calls nothing and answers `failed`, `cancel` does nothing. */
  readonly refused: NoPlace | undefined;
  send(request: ChargeRequest, options?: SendOptions): Promise<ChargeOutcome>;
  cancel(): void;
}

/** The answer of `reserve` when there is no place: a slot that never sends. */
function refusedSlot(refused: NoPlace): QueueSlot {
  const why = refused.reason === 'not_configured' ? 'no charge service is configured' : 'the charge queue is full';
  return { refused, send: () => Promise.resolve({ kind: 'failed', reason: `${why}; nothing was sent` }), cancel: () => undefined };
}

const IDLE_SOCKET_MS = 2000;

// Errors where the request cannot have been delivered: nothing happened upstream.
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION_VALUE',
]);
const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ERR_CANCELED']);

/**
 * The charge service client. The service takes one request at a time, so every charge and refund
 * of this process goes through one FIFO queue of concurrency 1, and each call holds the
 * cross-process ChargeLock: never two /charge requests in flight across all order-up processes.
 */
export class ChargeService {
  private readonly queue = new PQueue({ concurrency: 1 });
  private readonly http: AxiosInstance | undefined;
  private recentMs = 50;
  /** Late answers being noted on their payments (a drain waits for them). */
  private readonly notes = new Set<Promise<void>>();

  constructor(
    baseUrl: string | undefined,
    private readonly timeoutMs: number,
    private readonly maxWaiting: number,
    private readonly lock: ChargeLock,
    private readonly metrics: ChargeMetrics = NO_CHARGE_METRICS,
  ) {
    metrics.watchQueue(() => this.queue.size);
    this.http =
      baseUrl === undefined
        ? undefined
        : axios.create({
            baseURL: baseUrl.replace(/\/+$/, ''),
            // No axios timeout: a call that outlives UPSTREAM_TIMEOUT_MS is answered as in doubt but not
            // abandoned (see turn() in reserve).
            // One request at a time anyway: a single kept-alive socket saves a handshake per charge. An
            // idle socket is closed after 2 s, before a server's usual keep-alive timeout (5 s in Node):
            // reusing a socket the service is closing would end in a reset, i.e. a needless in-doubt payment.
            httpAgent: new http.Agent({ keepAlive: true, maxSockets: 1, timeout: IDLE_SOCKET_MS }),
            validateStatus: () => true,
            maxRedirects: 0,
            headers: { 'Content-Type': 'application/json' },
          });
  }

  /** Charges and refunds waiting in this process, the one in flight not counted. */
  get waiting(): number {
    return this.queue.size;
  }

  /**
   * Takes this request's place in the queue now, in arrival order, or says why there is none
   * (`refused`: no charge service, or the queue is full). The caller journals the payment, then
   * `send`s (or `cancel`s); should the queue reach the place first, it waits for that - a moment of
   * one database statement.
   */
  reserve(): QueueSlot {
    if (!this.http) return refusedSlot({ reason: 'not_configured' });
    // Refused only when this request would have to wait and the waiting room is full.
    const wouldWait = this.queue.pending > 0 || this.queue.size > 0;
    if (wouldWait && this.waiting >= this.maxWaiting) {
      return refusedSlot({ reason: 'queue_full', retryAfterSeconds: Math.max(1, Math.ceil(((this.waiting + 1) * this.recentMs) / 1000)) });
    }
    let fill!: (request: { body: ChargeRequest; options: SendOptions } | null) => void;
    const request = new Promise<{ body: ChargeRequest; options: SendOptions } | null>((resolve) => (fill = resolve));
    let answer!: (outcome: ChargeOutcome) => void;
    const answered = new Promise<ChargeOutcome>((resolve) => (answer = resolve));
    const turn = this.queue.add(async () => {
      const r = await request;
      if (r === null) {
        // The caller gave up its place (refused, or nothing to charge): the lock may still be
        // held from the call before, and must not stay held while this process is idle.
        await this.lock.keepOrRelease(this.waiting > 0);
        return;
      }
      const waitStarted = performance.now();
      try {
        await this.lock.acquire();
      } catch {
        // Without the lock we may not call; nothing was sent.
        return answer({ kind: 'failed', reason: 'could not take the cross-process charge lock' });
      } finally {
        this.metrics.lockWaitSeconds((performance.now() - waitStarted) / 1000);
      }
      if (r.options.mayCall && !r.options.mayCall()) {
        answer({ kind: 'failed', reason: 'order-up lost the database lease this payment was recorded under; nothing was sent' });
        await this.lock.keepOrRelease(this.waiting > 0);
        return;
      }
      // A refund is a call with a negative amount (see domain/payments.ts).
      const kind: ChargeKind = r.body.amountCents < 0 ? 'refund' : 'charge';
      const started = performance.now();
      const abort = new AbortController();
      const call = this.post(r.body, abort.signal);
      const first = await within(call, this.timeoutMs);
      this.recentMs = 0.8 * this.recentMs + 0.2 * (performance.now() - started);
      this.metrics.called(kind, first === TIMED_OUT ? 'in_doubt' : first.kind);
      if (first !== TIMED_OUT) {
        this.metrics.callSeconds(kind, (performance.now() - started) / 1000);
        // The caller has its answer before the lock is handed over: the unlock's round trip (when
        // nothing else waits) is not on the customer's time.
        answer(first);
      } else {
        // Answered as in doubt now; but the service may still be working on the request, so it stays
        // this process's one call in flight (queue and lock held) until it answers - or, should it
        // never, until twice as long again, when the request is given up.
        answer({ kind: 'in_doubt', reason: 'timeout' });
        // (A drain waits for this too: letting go of the lock earlier would let another process call.)
        const timedOutAt = performance.now();
        const giveUp = setTimeout(() => abort.abort(), 2 * this.timeoutMs);
        const late = await call;
        clearTimeout(giveUp);
        this.metrics.callSeconds(kind, (performance.now() - started) / 1000);
        const gaveUp = abort.signal.aborted;
        const afterMs = gaveUp ? 2 * this.timeoutMs : Math.round(performance.now() - timedOutAt);
        const answered = late.kind === 'succeeded' || late.kind === 'declined' || (late.kind === 'failed' && late.status !== undefined);
        // Noted outside the queue's turn: the lock is not held while the database is written.
        const note = r.options
          .onLateAnswer?.(answered ? { answered, outcome: late, afterMs } : { answered, outcome: late, afterMs, gaveUp })
          .catch(() => undefined);
        if (note) {
          this.notes.add(note);
          void note.finally(() => this.notes.delete(note));
        }
      }
      await this.lock.keepOrRelease(this.waiting > 0);
    });
    // post() never throws; should anything else, the request may have left: never guess.
    turn.catch(() => answer({ kind: 'in_doubt', reason: 'reset' }));
    return {
      refused: undefined,
      send: async (body, options = {}) => {
        fill({ body, options });
        const outcome = await answered;
        // The charge service idles until the next call reaches it, so that call goes first: the
        // queue starts it in this same turn of the event loop, and its request is written out at
        // the end of the turn (node sends on process.nextTick). Our caller's next step - the
        // outcome's database write, whose wake-up of PostgreSQL can cost this process its core on a
        // busy machine - waits for the check phase, just after. Nothing about the outcome changes.
        await new Promise<void>((resolve) => setImmediate(resolve));
        return outcome;
      },
      cancel: () => fill(null),
    };
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  async drain(): Promise<void> {
    await this.queue.onIdle();
    await Promise.all(this.notes);
    await this.lock.release();
  }

  async close(): Promise<void> {
    await this.drain();
    await this.lock.close();
  }

  private async post(request: ChargeRequest, signal: AbortSignal): Promise<ChargeOutcome> {
    try {
      const res = await this.http!.post('/charge', { cardToken: request.cardToken, amountCents: request.amountCents }, { signal });
      if (res.status === 201) return { kind: 'succeeded' };
      if (res.status >= 400 && res.status < 500) return { kind: 'declined', status: res.status };
      return { kind: 'failed', reason: `charge service answered ${res.status}`, status: res.status };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (NOT_SENT.has(code)) return { kind: 'failed', reason: `charge service unreachable (${code})` };
      if (TIMEOUT_CODES.has(code)) return { kind: 'in_doubt', reason: 'timeout' };
      // Reset, hang-up mid-response, anything else after the request may have gone out.
      return { kind: 'in_doubt', reason: 'reset' };
    }
  }
}

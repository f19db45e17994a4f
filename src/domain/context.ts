import type { Logger } from 'pino';
import type { OutcomeRetry } from '../config.js';
import type { KeyRef } from '../db/idempotency-repo.js';
import type { DataAccess } from '../db/data-access.js';
import type { ChargeService } from '../upstream/charge-service.js';
import type { FulfillmentService } from '../upstream/fulfillment-service.js';

/** The long-lived services of one order-up process, shared by every request and command. */
export interface Services {
  /** This process's key (see db/process-lease.ts): the owner recorded on the work it starts. */
  readonly processKey: number;
  /** Whether the process holds its lease (no new work without it), and which keys were its own. */
  lease: { readonly held: boolean; holds(key: number): boolean; isOwn(owner: number): boolean };
  /** Tokens of the claims this process is working under right now (see domain/exclusive.ts). */
  activeClaims: Set<string>;
  /** Idempotency keys this process is taking or running a request under, with how many of its requests do. */
  activeKeys: Map<string, number>;
  /** Known payment outcomes being written while the database is away, after their callers were answered (domain/payments.ts). */
  outcomes: OutcomeRetry & { pending: Set<Promise<void>> };
  charge: ChargeService;
  fulfillment: FulfillmentService;
}

/** A final answer, as the caller gets it and as a replay gives it back. */
export interface Answer {
  status: number;
  body: unknown;
  location?: string;
}

/** What an operation came to: its result, or the error its caller hears. */
export type Outcome = { result: unknown } | { error: unknown };

/**
 * A request running under its Idempotency-Key, once the key is taken (`ctx.attempt`). The answer is
 * stored with the operation's outcome, in the same statement (`answerWith`), so a key is never
 * left without the answer to an outcome that happened.
 */
export interface KeyedAttempt {
  ref: KeyRef;
  /** The lease key the key was taken under. */
  owner: number;
  ttlMs: number;
  /** What the request asks for: the same key must always ask for the same. */
  fingerprint: string;
  /**
   * False while the key is not taken yet: an operation that can take it in its own statement (a
   * create) does so, already answered - or meets the key taken by another request (KeyHeld).
   */
  taken: boolean;
  /** The answer its caller gets for an outcome; null when that answer is not kept (the key is then let go). */
  answerFor(outcome: Outcome): Answer | null;
  /** The answer stored with the key, once it is. */
  recorded?: Answer;
  /** Set while the outcome (and the answer with it) is still being written after the caller was answered. */
  background?: Promise<void>;
}

/** Who caused a change, as the order's timeline records it. */
export interface Actor {
  kind: 'customer' | 'staff' | 'cli' | 'system';
  /** The staff token's holder, the CLI user; none for a customer or the system. */
  name?: string;
}

export const SYSTEM: Actor = { kind: 'system' };

/**
 * What a domain function works with: the data-access layer (repositories of plain records), the
 * log of this one request or command, who acts, and the services of the process. HTTP handlers and CLI
 * commands build it the same way.
 */
export interface DomainContext {
  db: DataAccess;
  log: Logger;
  services: Services;
  /** Who is acting: recorded on every event this work writes. */
  actor: Actor;
  /** The X-Request-Id of the HTTP request this work serves, if any. */
  requestId?: string;
  /** The Idempotency-Key this request runs under, once taken: its answer is stored with the outcome. */
  attempt?: KeyedAttempt;
}

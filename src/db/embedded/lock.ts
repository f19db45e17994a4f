import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './processes.js';

// One process at a time inspects, starts, adopts or stops the cluster of a data directory. The
// lock is a file created exclusively, holding {pid, token}. A lock whose pid is dead is stale and
// taken over at once: a start that was SIGKILLed must not hold up the next one. (proper-lockfile
// would wait for the lock's mtime to age instead, and no longer name the holder we wait for.)

/** Older than any start can take: its holder's pid was reused by an unrelated process. */
const STALE_LOCK_MS = 5 * 60_000;
/** A lock file unreadable for this long was left half-written by a holder that died. */
const UNREADABLE_STALE_MS = 5_000;
/** A `lock.break` guard this old was left by a breaker that died mid-way. */
const STALE_GUARD_MS = 10_000;

interface LockContent {
  pid: number;
  token: string;
}

export type Release = () => Promise<void>;

function readLock(file: string): LockContent | null {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
    return typeof c.pid === 'number' && typeof c.token === 'string' ? c : null;
  } catch {
    return null;
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

export async function acquireLock(file: string, timeoutMs: number, log: (msg: string) => void): Promise<Release> {
  const mine: LockContent = { pid: process.pid, token: randomBytes(8).toString('hex') };
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx', mode: 0o644 });
      // The token, not the pid: a lock broken as stale and re-taken by another process is not ours.
      return async () => {
        if (readLock(file)?.token === mine.token) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    const stale = holder ? !isAlive(holder.pid) || ageMs(file) > STALE_LOCK_MS : ageMs(file) > UNREADABLE_STALE_MS;
    if (stale) breakStaleLock(file, holder);
    if (Date.now() > deadline) {
      throw new Error(`embedded postgres: timed out waiting for ${file} (held by pid ${holder?.pid ?? 'unknown'})`);
    }
    if (!announced && holder && holder.pid !== process.pid) {
      log(`embedded postgres: waiting for pid ${holder.pid} to finish starting the database`);
      announced = true;
    }
    // Jittered, so that processes waiting together do not retry in lockstep.
    await sleep(50 + Math.floor(Math.random() * 100));
  }
}

/**
 * Removes a stale lock. Two processes may both find the same lock stale; without `lock.break`
 * the slower one could remove the lock the faster one has just taken.
 */
function breakStaleLock(file: string, seen: LockContent | null): void {
  const guard = `${file}.break`;
  try {
    fs.writeFileSync(guard, String(process.pid), { flag: 'wx' });
  } catch {
    if (ageMs(guard) > STALE_GUARD_MS) fs.rmSync(guard, { force: true });
    return;
  }
  try {
    const now = readLock(file);
    const stillStale = seen
      ? now?.token === seen.token && (!isAlive(seen.pid) || ageMs(file) > STALE_LOCK_MS)
      : now === null && ageMs(file) > UNREADABLE_STALE_MS;
    if (stillStale) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// Pids recorded in files (state.json, lock, postmaster.pid) may belong to processes long gone,
// or to unrelated ones that got the pid later: every check here allows for both.

const STOP_TIMEOUT_MS = 15_000;

/** Alive and not a zombie (a zombie answers kill(pid, 0) but is gone). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (st === 'Z' || st === 'X') return false;
  } catch {
    /* no /proc: trust kill() */
  }
  return true;
}

/** A live postgres process serving `pgdata` (guards against pid reuse). */
export function isOurPostmaster(pid: number, pgdata: string): boolean {
  if (!isAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true; // no /proc (macOS): trust postmaster.pid
  }
  const args = cmdline.split('\0');
  return /postgres/.test(args[0] ?? '') && args.includes(pgdata);
}

/** The postmaster that postgres recorded in pgdata/postmaster.pid, when it is ours and running. */
export function ourPostmaster(pgdata: string): { pid: number; port: number } | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pm = { pid: Number(lines[0]), port: Number(lines[3]) };
  return isOurPostmaster(pm.pid, pgdata) ? pm : null;
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Fast shutdown (SIGINT); immediate shutdown (SIGQUIT) then SIGKILL if it does not exit. */
export async function killPostmaster(pid: number, log: (msg: string) => void): Promise<void> {
  for (const [signal, ms] of [
    ['SIGINT', STOP_TIMEOUT_MS],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
    if (await waitForExit(pid, ms)) return;
    log(`embedded postgres: postmaster ${pid} ignored ${signal}`);
  }
  throw new Error(`embedded postgres: could not stop postmaster pid ${pid}`);
}

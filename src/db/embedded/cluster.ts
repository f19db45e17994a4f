import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDatabase, hasDatabase, probe } from './client.js';
import { owner, reused, type EmbeddedDatabase } from './handles.js';
import { initialise } from './initdb.js';
import { acquireLock } from './lock.js';
import { postgresOsUser, prepareDataDir } from './os-user.js';
import { startPostgres } from './postmaster.js';
import { isAlive, killPostmaster, ourPostmaster } from './processes.js';
import { HOST, isInitialised, layout, newState, readState, writeState, type Paths, type State } from './state.js';

// Protocol: a process first tries the state file without the lock and reuses a healthy instance
// whose owner is alive (`owned: false`, `stop()` is a no-op). Otherwise it takes the lock and,
// holding it: reuses an instance that became healthy meanwhile; adopts a healthy instance whose
// owning node process is gone (e.g. SIGKILLed) (`owned: true`); stops a postmaster of ours that
// does not answer; initialises the cluster on first use; starts it on the recorded port (or a
// new free one when that port is taken) and records itself as the owner (`owned: true`).
//
// Known and accepted: when the owner stops postgres while non-owner processes (say a CLI command
// next to `order-up serve`, or the other way round) are still connected, their connections fail.
// The next `startEmbeddedDatabase` call of any process starts it again (and owns it).

/** Long enough for another process's first start (initdb included) on a slow machine. */
const LOCK_TIMEOUT_MS = 90_000;

export interface EmbeddedOptions {
  dataDir: string;
  log?: (msg: string) => void;
}

export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const paths = layout(opts.dataDir);
  const pgUser = postgresOsUser();
  prepareDataDir(paths.dataDir, pgUser);

  // Fast path, no lock: a healthy instance with a live owner.
  const early = readState(paths.state);
  if (early?.port && early.ownerPid && isAlive(early.ownerPid)) {
    if ((await probe(early, early.port, paths.pgdata)) === 'ok' && (await hasDatabase(early, early.port))) {
      log(`embedded postgres: reusing the instance on ${HOST}:${early.port} (owner pid ${early.ownerPid})`);
      return reused(early, early.port);
    }
  }

  const release = await acquireLock(paths.lock, LOCK_TIMEOUT_MS, log);
  try {
    let state = readState(paths.state);

    // 1. Something answers with our credentials, from our data directory.
    const running = await findRunning(state, paths, log);
    if (state && running) {
      await ensureDatabase(state, running.port);
      const ownerAlive = state.ownerPid !== null && isAlive(state.ownerPid);
      if (ownerAlive && state.port === running.port) {
        log(`embedded postgres: reusing the instance on ${HOST}:${running.port} (owner pid ${state.ownerPid})`);
        return reused(state, running.port);
      }
      // Orphaned (owner gone, e.g. SIGKILLed) or never recorded: adopt it.
      state = { ...state, port: running.port, ownerPid: process.pid, postmasterPid: running.pid };
      writeState(paths.state, state);
      log(`embedded postgres: adopted the running instance on ${HOST}:${running.port} (postmaster pid ${running.pid})`);
      return owner(paths, state, running.pid, log);
    }

    // 2. Initialise on first use.
    if (!isInitialised(paths.pgdata)) {
      if (!state) {
        state = newState();
        writeState(paths.state, state); // before initdb: the password must never be lost
      }
      await initialise(paths, state, pgUser, log);
    } else if (!state) {
      throw new Error(
        `embedded postgres: ${paths.pgdata} exists but ${paths.state} (which holds its password) is missing; ` +
          `remove ${paths.dataDir} to start over with an empty database`,
      );
    }

    // 3. Start it.
    const started = await startPostgres(paths, state, pgUser, log);
    state = { ...state, port: started.port, ownerPid: process.pid, postmasterPid: started.pid };
    writeState(paths.state, state);
    await ensureDatabase(state, started.port);
    log(`embedded postgres: started on ${HOST}:${started.port} (postmaster pid ${started.pid}, data ${paths.pgdata})`);
    return owner(paths, state, started.pid, log);
  } finally {
    await release();
  }
}

/**
 * Stops whatever postgres runs from `dataDir`, whoever started it (for tooling and tests).
 * Connected processes lose their connections.
 */
export async function stopEmbeddedDatabase(opts: EmbeddedOptions): Promise<void> {
  const paths = layout(opts.dataDir);
  if (!fs.existsSync(paths.dataDir)) return;
  const log = opts.log ?? (() => {});
  const release = await acquireLock(paths.lock, LOCK_TIMEOUT_MS, log);
  try {
    const pm = ourPostmaster(paths.pgdata);
    if (pm) await killPostmaster(pm.pid, log);
    const state = readState(paths.state);
    if (state) writeState(paths.state, { ...state, ownerPid: null, postmasterPid: null });
  } finally {
    await release();
  }
}

/**
 * Under the lock: our postmaster, if one is running and answers (waiting a little while it
 * starts up); a postmaster of ours that does not answer is stopped.
 */
async function findRunning(state: State | null, paths: Paths, log: (msg: string) => void): Promise<{ port: number; pid: number } | null> {
  const pm = ourPostmaster(paths.pgdata);
  if (!pm) return null;
  if (state) {
    const ports = [...new Set([pm.port, state.port].filter((p): p is number => Number.isInteger(p) && (p as number) > 0))];
    const deadline = Date.now() + 5_000;
    for (;;) {
      let starting = false;
      for (const port of ports) {
        const r = await probe(state, port, paths.pgdata);
        if (r === 'ok') return { port, pid: pm.pid };
        if (r === 'starting') starting = true;
      }
      if (!starting || Date.now() > deadline || !isAlive(pm.pid)) break;
      await sleep(100);
    }
  }
  log(`embedded postgres: postmaster pid ${pm.pid} does not answer with our credentials; stopping it`);
  await killPostmaster(pm.pid, log);
  return null;
}

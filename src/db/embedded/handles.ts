import { acquireLock } from './lock.js';
import { isOurPostmaster, killPostmaster } from './processes.js';
import { HOST, readState, writeState, type Paths, type State } from './state.js';

// What startEmbeddedDatabase returns: a URL, and stop() for the owner of the cluster only.

export interface EmbeddedDatabase {
  /** `postgres://user:password@127.0.0.1:port/order_up` */
  url: string;
  /** true when this process started (or adopted) the instance and `stop()` stops it */
  owned: boolean;
  stop(): Promise<void>;
}

function urlFor(state: State, port: number): string {
  const user = encodeURIComponent(state.user);
  return `postgres://${user}:${encodeURIComponent(state.password)}@${HOST}:${port}/${encodeURIComponent(state.database)}`;
}

/** Another live process owns the cluster: stop() leaves it running for that one. */
export function reused(state: State, port: number): EmbeddedDatabase {
  return { url: urlFor(state, port), owned: false, stop: async () => {} };
}

export function owner(paths: Paths, state: State, postmasterPid: number, log: (msg: string) => void): EmbeddedDatabase {
  let stopping: Promise<void> | null = null;
  // Fallback for owners that exit without calling stop(): ask postgres for a fast shutdown.
  // (A process killed by a signal it does not handle runs no exit handler; postgres then stays
  // up as an orphan and the next start adopts it.)
  const onExit = () => {
    if (isOurPostmaster(postmasterPid, paths.pgdata)) {
      try {
        process.kill(postmasterPid, 'SIGINT');
      } catch {
        /* gone */
      }
    }
  };
  process.on('exit', onExit);
  return {
    url: urlFor(state, state.port as number),
    owned: true,
    stop() {
      stopping ??= (async () => {
        process.off('exit', onExit);
        if (isOurPostmaster(postmasterPid, paths.pgdata)) await killPostmaster(postmasterPid, log);
        // Record it, unless someone else started a new instance meanwhile.
        const release = await acquireLock(paths.lock, 10_000, log).catch(() => null);
        try {
          const current = readState(paths.state);
          if (current && current.postmasterPid === postmasterPid) {
            writeState(paths.state, { ...current, ownerPid: null, postmasterPid: null });
          }
        } finally {
          await release?.();
        }
        log(`embedded postgres: stopped (postmaster pid ${postmasterPid})`);
      })();
      return stopping;
    },
  };
}

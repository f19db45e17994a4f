import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// What a data directory (default `.order-up/`) holds:
//   state.json    mode 0600: port, user, password, database, ownerPid (node), postmasterPid
//   lock          who is starting or stopping the cluster right now (lock.ts)
//   lock.break    short-lived guard while a stale lock is removed (lock.ts)
//   pgdata/       the cluster (owned by the `postgres` user when we run as root, os-user.ts)
//   postgres.log  server output of the current run

/** Loopback only: the cluster serves the order-up processes of this machine, nobody else. */
export const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const DATABASE = 'order_up';

export interface Paths {
  dataDir: string;
  state: string;
  lock: string;
  pgdata: string;
  logFile: string;
}

export function layout(dataDir: string): Paths {
  const abs = path.resolve(dataDir);
  return {
    dataDir: abs,
    state: path.join(abs, 'state.json'),
    lock: path.join(abs, 'lock'),
    pgdata: path.join(abs, 'pgdata'),
    logFile: path.join(abs, 'postgres.log'),
  };
}

export interface State {
  version: 1;
  host: string;
  port: number | null;
  user: string;
  password: string;
  database: string;
  ownerPid: number | null;
  postmasterPid: number | null;
}

/** The state of a cluster not created yet: the only moment its superuser's password is chosen. */
export function newState(): State {
  return {
    version: 1,
    host: HOST,
    port: null,
    user: SUPERUSER,
    password: randomBytes(24).toString('hex'),
    database: DATABASE,
    ownerPid: null,
    postmasterPid: null,
  };
}

/** null when missing or unusable (a half-written or foreign file). */
export function readState(file: string): State | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const s = JSON.parse(text) as State;
    if (typeof s.password !== 'string' || typeof s.user !== 'string') return null;
    return s;
  } catch {
    return null;
  }
}

/** Atomic (write + rename): readers that take no lock never see half a file. Mode 0600: it holds the password. */
export function writeState(file: string, state: State): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** Whether initdb has made a cluster in `pgdata` (without PG_VERSION, initdb.ts starts over). */
export function isInitialised(pgdata: string): boolean {
  return fs.existsSync(path.join(pgdata, 'PG_VERSION'));
}

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// PostgreSQL refuses to run as root. When we are root, postgres runs as the OS user `postgres`,
// which must be able to enter every directory on the way to its data and its binaries.

const OS_USER = 'postgres';

export interface OsUser {
  uid: number;
  gid: number;
}

/** The OS user postgres runs as when we are root (created if missing), else null: ourselves. */
export function postgresOsUser(): OsUser | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const lookup = (): OsUser => ({
    uid: Number(execFileSync('id', ['-u', OS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
    gid: Number(execFileSync('id', ['-g', OS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
  });
  try {
    return lookup();
  } catch {
    try {
      try {
        execFileSync('groupadd', [OS_USER], { stdio: 'ignore' });
      } catch {
        /* group may exist */
      }
      execFileSync('useradd', ['-g', OS_USER, OS_USER], { stdio: 'ignore' });
      return lookup();
    } catch (err) {
      throw new Error(`embedded postgres: running as root needs an OS user "${OS_USER}" and creating it failed: ${String(err)}`, {
        cause: err,
      });
    }
  }
}

/**
 * Creates `dataDir` and makes sure `pgUser` can reach it: directories we created (or own) on the
 * way are made searchable; any other that blocks it is an error naming that directory.
 */
export function prepareDataDir(dataDir: string, pgUser: OsUser | null): void {
  // Create what is missing, remembering what we created.
  const created: string[] = [];
  for (let dir = dataDir; !fs.existsSync(dir); dir = path.dirname(dir)) created.push(dir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  for (const dir of [...created, dataDir]) {
    const st = fs.statSync(dir);
    if (created.includes(dir) || st.uid === process.getuid?.()) {
      if ((st.mode & 0o011) !== 0o011) fs.chmodSync(dir, (st.mode & 0o7777) | 0o011);
    }
  }
  if (!pgUser) return; // postgres runs as ourselves
  for (const target of [dataDir, fs.realpathSync(dataDir)]) {
    const blocked = unreachableFor(target, pgUser);
    if (blocked) {
      const st = fs.statSync(blocked);
      throw new Error(
        `embedded postgres runs as the OS user "${OS_USER}", which cannot enter ${blocked} ` +
          `(mode ${(st.mode & 0o777).toString(8)}), needed to reach the data directory ${target}. ` +
          `Make it world-searchable (chmod o+x ${blocked}) or put ORDER_UP_DATA_DIR elsewhere.`,
      );
    }
  }
}

/** The first directory on the way to `target` that `user` may not enter, or null when all are fine. */
export function unreachableFor(target: string, user: OsUser): string | null {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    const ok =
      (st.mode & 0o001) !== 0 || (st.uid === user.uid && (st.mode & 0o100) !== 0) || (st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!ok) return dir;
    if (dir === path.dirname(dir)) return null;
  }
}

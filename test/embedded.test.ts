import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDatabase, startEmbeddedDatabase, stopEmbeddedDatabase } from '../src/db/embedded/index.js';
import { compileEmbedded } from './support/global-setup.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Under the repo (world-searchable), not mktemp: postgres runs as another user when we are root.
// A clone inside a 0700 directory cannot host the data, so then the data goes to the temp dir.
const workDir = path.join(repoRoot, '.test-db', `embedded-${process.pid}-${randomBytes(3).toString('hex')}`);
const searchable = (dir: string): boolean =>
  (fs.statSync(dir).mode & 0o001) !== 0 && (dir === path.dirname(dir) || searchable(path.dirname(dir)));
const dataRoot = searchable(repoRoot) ? workDir : path.join(os.tmpdir(), path.basename(workDir));
const dataDir = path.join(dataRoot, 'data');
const compiled = compileEmbedded(repoRoot); // src/db/embedded/ as plain ES modules, for the child processes
const childScript = path.join(repoRoot, 'test', 'support', 'embedded-child.mjs');
const started: string[] = [];

interface ChildReport {
  pid: number;
  owned: boolean;
  port: number;
  rows: string[];
}

/** Another order-up process: runs test/support/embedded-child.mjs on the compiled module. */
function child(dir: string, action: 'hold' | 'read', value = '') {
  const proc = spawn(process.execPath, [childScript, compiled, dir, action, value], { cwd: repoRoot });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const report = new Promise<ChildReport>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve(JSON.parse(line) as ChildReport);
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${stderr}`)));
  });
  return {
    proc,
    report,
    exited,
    async stop() {
      proc.stdin.end('stop\n');
      return exited;
    },
  };
}

async function rows(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS t (v text NOT NULL)');
    return (await client.query<{ v: string }>('SELECT v FROM t ORDER BY v')).rows.map((r) => r.v);
  } finally {
    await client.end();
  }
}

async function insert(url: string, v: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS t (v text NOT NULL)');
    await client.query('INSERT INTO t (v) VALUES ($1)', [v]);
  } finally {
    await client.end();
  }
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

function readState(dir: string): { port: number; postmasterPid: number | null; ownerPid: number | null } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

beforeAll(() => {
  fs.mkdirSync(workDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(dataRoot, { recursive: true, mode: 0o755 });
  started.push(dataDir);
});

afterAll(async () => {
  for (const dir of started) await stopEmbeddedDatabase({ dataDir: dir }).catch(() => {});
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.rmSync(dataRoot, { recursive: true, force: true });
});

describe('embedded PostgreSQL shared by several processes', () => {
  test("when started in two processes, then the second reuses the first one's instance and sees the same data", async () => {
    const first = child(dataDir, 'hold', 'from-first');
    const report = await first.report;
    expect(report.owned).toBe(true);
    expect(report.rows).toEqual(['from-first']);

    const second = child(dataDir, 'read');
    const seen = await second.report;
    expect(await second.exited).toBe(0);
    expect(seen).toMatchObject({ owned: false, port: report.port, rows: ['from-first'] });

    const here = await startEmbeddedDatabase({ dataDir });
    expect(here.owned).toBe(false);
    expect(await rows(here.url)).toEqual(['from-first']);
    await here.stop(); // no-op: not ours
    expect(await canConnect(here.url)).toBe(true);

    expect(await first.stop()).toBe(0);
    expect(await canConnect(here.url)).toBe(false);
    expect(readState(dataDir)).toMatchObject({ ownerPid: null, postmasterPid: null });
  });

  test('when stopped and started again, then the data survives', async () => {
    const a = await startEmbeddedDatabase({ dataDir });
    expect(a.owned).toBe(true);
    await insert(a.url, 'persisted');
    await a.stop();
    expect(await canConnect(a.url)).toBe(false);

    const b = await startEmbeddedDatabase({ dataDir });
    expect(b.owned).toBe(true);
    expect(b.url).toBe(a.url); // same port, same credentials
    expect(await rows(b.url)).toEqual(['from-first', 'persisted']);
    await b.stop();
  });

  test('when the owner process was SIGKILLed, then a new start adopts the orphaned postgres and the data is there', async () => {
    const owner = child(dataDir, 'hold', 'before-kill');
    expect((await owner.report).owned).toBe(true);
    const { postmasterPid } = readState(dataDir);
    owner.proc.kill('SIGKILL');
    await owner.exited;
    expect(alive(postmasterPid as number)).toBe(true); // postgres outlived its owner

    const db = await startEmbeddedDatabase({ dataDir });
    expect(db.owned).toBe(true);
    expect(readState(dataDir)).toMatchObject({ ownerPid: process.pid, postmasterPid });
    expect(await rows(db.url)).toEqual(['before-kill', 'from-first', 'persisted']);
    await db.stop();
    expect(alive(postmasterPid as number)).toBe(false);
  });

  test('when the recorded port is taken by another program, then start picks another port and keeps the data', async () => {
    const { port } = readState(dataDir);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const db = await startEmbeddedDatabase({ dataDir });
      expect(db.owned).toBe(true);
      expect(Number(new URL(db.url).port)).not.toBe(port);
      expect(await rows(db.url)).toContain('persisted');
      await db.stop();
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  test('when postmaster.pid names a live process that is not our postgres, then start still works', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      fs.writeFileSync(path.join(dataDir, 'pgdata', 'postmaster.pid'), `${sleeper.pid}\n${path.join(dataDir, 'pgdata')}\n0\n5432\n`);
      const db = await startEmbeddedDatabase({ dataDir });
      expect(db.owned).toBe(true);
      expect(await rows(db.url)).toContain('persisted');
      await db.stop();
      expect(alive(sleeper.pid as number)).toBe(true); // not mistaken for postgres
    } finally {
      sleeper.kill();
    }
  });

  test('when two processes start at once on a fresh data dir, then exactly one initialises and owns it', async () => {
    const fresh = path.join(dataRoot, 'fresh');
    started.push(fresh);
    const a = child(fresh, 'hold', 'a');
    const b = child(fresh, 'hold', 'b');
    const [ra, rb] = await Promise.all([a.report, b.report]);
    expect([ra.owned, rb.owned].sort()).toEqual([false, true]);
    expect(ra.port).toBe(rb.port);
    const [nonOwner, theOwner] = ra.owned ? [b, a] : [a, b];
    expect(await nonOwner.stop()).toBe(0);
    expect(await theOwner.stop()).toBe(0);
    const state = readState(fresh);
    expect(state.ownerPid).toBeNull();
    expect((fs.statSync(path.join(fresh, 'state.json')).mode & 0o777).toString(8)).toBe('600');
  });

  test('when an ancestor of the data dir is not world-searchable, then start fails naming it', async () => {
    if (process.getuid?.() !== 0) return; // postgres runs as ourselves: nothing to check
    const closed = path.join(dataRoot, 'closed');
    fs.mkdirSync(closed, { mode: 0o700 });
    fs.chmodSync(closed, 0o700);
    await expect(startEmbeddedDatabase({ dataDir: path.join(closed, 'data') })).rejects.toThrow(closed);
  });

  test('when createDatabase is called twice with one name, then it returns a fresh empty database each time', async () => {
    const db = await startEmbeddedDatabase({ dataDir });
    try {
      const admin = new URL(db.url);
      admin.pathname = '/postgres';
      const url = await createDatabase(admin.toString(), 'Weird "name"');
      expect(decodeURIComponent(new URL(url).pathname)).toBe('/Weird "name"');
      await insert(url, 'x');
      const again = await createDatabase(admin.toString(), 'Weird "name"');
      expect(await rows(again)).toEqual([]);
    } finally {
      await db.stop();
    }
  });
});

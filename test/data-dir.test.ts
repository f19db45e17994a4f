// Where the embedded database's data goes when ORDER_UP_DATA_DIR is not set (src/data-dir.ts): a
// clone in a private directory (mode 700, e.g. under /root or `mktemp -d`) cannot host it when
// postgres runs as its own OS user, so `make run` and the CLI next to it both use one directory
// under /var/tmp instead.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { chooseDataDir } from '../src/data-dir.js';
import { newOrder } from './support/app.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'order-up.js');
/** A user that is not us and owns nothing here: the `postgres` of a root run. */
const OTHER_USER = { uid: 54321, gid: 54321 };
const cleanup: string[] = [];

afterAll(() => {
  for (const dir of cleanup) fs.rmSync(dir, { recursive: true, force: true });
});

/** A private directory (mode 700, as mktemp -d makes it) with a project in it. */
function privateClone(): { priv: string; project: string } {
  const priv = fs.mkdtempSync(path.join(os.tmpdir(), 'order-up-private-'));
  fs.chmodSync(priv, 0o700);
  cleanup.push(priv);
  const project = path.join(priv, 'order-up');
  fs.mkdirSync(project);
  return { priv, project };
}

function openRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'order-up-fallback-'));
  fs.chmodSync(dir, 0o755);
  cleanup.push(dir);
  return dir;
}

describe('choosing the data directory', () => {
  test('when the project is under a mode-700 directory, then the data goes to one directory of ours (mode 755) under the fallback root, the same for every process of the project, with the reason', () => {
    const { priv, project } = privateClone();
    const fallbackRoot = openRoot();
    const first = chooseDataDir({ cwd: project, pgUser: OTHER_USER, fallbackRoot });
    expect(first.dir).toMatch(new RegExp(`^${fallbackRoot}/order-up-[0-9a-f]{16}$`));
    expect(first.note).toBe(`not ${path.join(project, '.order-up')}: the database's OS user "postgres" cannot enter ${priv} (mode 700)`);
    const st = fs.lstatSync(first.dir);
    expect({ directory: st.isDirectory(), uid: st.uid, mode: (st.mode & 0o777).toString(8) }).toEqual({
      directory: true,
      uid: process.getuid!(),
      mode: '755',
    });
    expect(fs.readFileSync(path.join(first.dir, 'project'), 'utf8')).toContain(path.join(project, '.order-up'));

    // The CLI in another terminal (same project) finds the same one; another project gets its own.
    expect(chooseDataDir({ cwd: project, pgUser: OTHER_USER, fallbackRoot })).toEqual(first);
    const other = privateClone();
    expect(chooseDataDir({ cwd: other.project, pgUser: OTHER_USER, fallbackRoot }).dir).not.toBe(first.dir);
  });

  test('when the project is reachable, or postgres runs as ourselves, then the data stays in .order-up without a note', () => {
    const { priv, project } = privateClone();
    const fallbackRoot = openRoot();
    expect(chooseDataDir({ cwd: project, pgUser: null, fallbackRoot })).toEqual({ dir: path.join(project, '.order-up') });
    fs.chmodSync(priv, 0o711);
    expect(chooseDataDir({ cwd: project, pgUser: OTHER_USER, fallbackRoot })).toEqual({ dir: path.join(project, '.order-up') });
    expect(fs.readdirSync(fallbackRoot)).toEqual([]);
  });

  test('when ORDER_UP_DATA_DIR is given, then it is used as given, reachable or not', () => {
    const { priv } = privateClone();
    expect(chooseDataDir({ explicit: path.join(priv, 'data'), pgUser: OTHER_USER, fallbackRoot: openRoot() })).toEqual({
      dir: path.join(priv, 'data'),
    });
  });

  test('when someone else put a link where the fallback directory goes, then it is refused, not followed', () => {
    const { project } = privateClone();
    const fallbackRoot = openRoot();
    const { dir } = chooseDataDir({ cwd: project, pgUser: OTHER_USER, fallbackRoot });
    fs.rmSync(dir, { recursive: true });
    fs.symlinkSync(openRoot(), dir);
    expect(() => chooseDataDir({ cwd: project, pgUser: OTHER_USER, fallbackRoot })).toThrow(
      `${dir} (the data directory for ${path.join(project, '.order-up')}) exists but is not a directory of yours`,
    );
  });
});

describe('make run in a private clone', () => {
  // Only as root does postgres run as another user (src/db/embedded/os-user.ts); otherwise there is nothing to choose.
  const asRoot = process.getuid?.() === 0 && existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));

  (asRoot ? test : test.skip)(
    'when serve starts from a project under a mode-700 directory, then it serves with its data under /var/tmp, says so in one banner line, and the CLI there uses the same database',
    async () => {
      const { priv, project } = privateClone();
      const expected = chooseDataDir({ cwd: project }).dir;
      cleanup.push(expected);
      const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ORDER_UP_STAFF_TOKENS: 'staff' };
      const serve = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--simulate-upstreams'], {
        cwd: project,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)));
      let stderr = '';
      serve.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        let banner = '';
        const url = await new Promise<string>((resolve, reject) => {
          serve.stdout.on('data', (d: Buffer) => {
            banner += d.toString();
            const m = /listening on (http:\/\/\S+)[\s\S]*simulated charge and fulfillment services: .*\n/.exec(banner);
            if (m) resolve(m[1]);
          });
          void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
        });
        expect(banner.split('\n').filter((l) => l.startsWith('data: '))).toEqual([
          `data: ${expected} (not ${path.join(project, '.order-up')}: the database's OS user "postgres" cannot enter ${priv} (mode 700))`,
        ]);
        expect(existsSync(path.join(project, '.order-up'))).toBe(false);

        const created = await fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(newOrder()),
        });
        expect(created.status).toBe(201);
        const { order } = (await created.json()) as { order: { id: string } };

        // `npx order-up orders list` in another terminal, in the same project: the same database.
        const list = spawn(process.execPath, [BIN, 'orders', 'list', '--json'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        list.stdout.on('data', (d: Buffer) => (out += d.toString()));
        expect(await new Promise((resolve) => list.on('exit', resolve))).toBe(0);
        expect((JSON.parse(out) as { orders: { id: string }[] }).orders.map((o) => o.id)).toEqual([order.id]);
      } finally {
        serve.kill('SIGINT');
        expect(await exited).toBe(0);
      }
    },
    90_000,
  );
});

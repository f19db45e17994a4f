// Jest globalSetup: one PostgreSQL for the whole run. With DATABASE_URL set, that server is used
// (test/support/test-db.ts creates the per-file databases through it). Otherwise an embedded
// instance under <repo>/.test-db/cluster is started (or reused/adopted when a previous, killed
// run left it running) and TEST_DATABASE_ADMIN_URL points at its `postgres` database; workers
// inherit the variable. The stop handle is passed to global-teardown through globalThis.
//
// Jest loads this file through `require` with a CommonJS transform and without moduleNameMapper,
// so it must not import project files (`../../src/db/embedded/index.js` does not resolve there, and
// the ESM-only postgres binaries package cannot be required). It therefore compiles
// src/db/embedded/ with swc into .test-db/ and loads it with a native dynamic import.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { transformSync } from '@swc/core';
import type { EmbeddedDatabase, startEmbeddedDatabase } from '../../src/db/embedded/index.js';

declare global {
  var __orderUpTestDb: EmbeddedDatabase | undefined;
}

// A real import() even when this file is compiled to CommonJS (where import() becomes require()).
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- deliberate, for the reason above
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/**
 * Compiles src/db/embedded/ into .test-db/compiled/embedded-<hash of its sources>/, each file on
 * its own with its relative `.js` imports kept (the folder imports no project file outside it),
 * and returns the path of the compiled index.js. test/embedded.test.ts runs its child processes
 * (test/support/embedded-child.mjs, outside jest) on the same output.
 */
export function compileEmbedded(rootDir: string): string {
  const srcDir = path.join(rootDir, 'src', 'db', 'embedded');
  const files = fs
    .readdirSync(srcDir)
    .filter((f) => f.endsWith('.ts'))
    .sort();
  const sources = files.map((f) => fs.readFileSync(path.join(srcDir, f), 'utf8'));
  const hash = createHash('sha256');
  files.forEach((f, i) => hash.update(`${f}\0${sources[i]}\0`));
  // Inside the repo: node_modules resolve, and its package.json makes the .js files ES modules.
  const outDir = path.join(rootDir, '.test-db', 'compiled', `embedded-${hash.digest('hex').slice(0, 12)}`);
  if (!fs.existsSync(outDir)) {
    const tmp = `${outDir}.${process.pid}.tmp`;
    fs.mkdirSync(tmp, { recursive: true, mode: 0o755 });
    files.forEach((f, i) => {
      const { code } = transformSync(sources[i], {
        filename: f,
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      });
      fs.writeFileSync(path.join(tmp, f.replace(/\.ts$/, '.js')), code);
    });
    try {
      fs.renameSync(tmp, outDir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(outDir)) throw err; // else a concurrent run made it first
    }
  }
  return path.join(outDir, 'index.js');
}

async function loadEmbedded(rootDir: string): Promise<{ startEmbeddedDatabase: typeof startEmbeddedDatabase }> {
  return (await nativeImport(pathToFileURL(compileEmbedded(rootDir)).href)) as { startEmbeddedDatabase: typeof startEmbeddedDatabase };
}

export default async function globalSetup(_globalConfig?: unknown, projectConfig?: { rootDir?: string }): Promise<void> {
  if (process.env.DATABASE_URL) return;
  if (process.env.TEST_DATABASE_ADMIN_URL && globalThis.__orderUpTestDb) return; // watch mode re-run

  const rootDir = projectConfig?.rootDir ?? process.cwd();
  const { startEmbeddedDatabase } = await loadEmbedded(rootDir);
  const log = process.env.ORDER_UP_TEST_DB_DEBUG ? (m: string) => process.stderr.write(`${m}\n`) : undefined;
  let db: EmbeddedDatabase;
  try {
    db = await startEmbeddedDatabase({ dataDir: path.join(rootDir, '.test-db', 'cluster'), log });
  } catch (err) {
    // A clone under a directory the postgres OS user cannot enter (a 0700 home): keep the test
    // cluster in the temp directory instead, one per clone.
    if (!/cannot enter/.test(String(err))) throw err;
    const tmp = path.join(os.tmpdir(), `order-up-test-db-${createHash('sha256').update(rootDir).digest('hex').slice(0, 12)}`);
    db = await startEmbeddedDatabase({ dataDir: tmp, log });
  }
  const admin = new URL(db.url);
  admin.pathname = '/postgres';
  process.env.TEST_DATABASE_ADMIN_URL = admin.toString();
  globalThis.__orderUpTestDb = db;

  // We own the instance, so no other run uses it: drop what earlier (killed) runs left behind.
  if (db.owned) {
    const client = new pg.Client({ connectionString: admin.toString() });
    client.on('error', () => {});
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE NOT datistemplate AND datname NOT IN ('postgres', 'order_up')`,
      );
      for (const { datname } of rows) {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`);
      }
    } finally {
      await client.end();
    }
  }
}

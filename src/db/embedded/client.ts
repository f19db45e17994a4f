import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { HOST, type State } from './state.js';

// Short-lived connections to the cluster with the credentials of state.json. Something may answer
// on a recorded port that is not our cluster (the port was reused): probe() tells them apart.

export type ProbeResult = 'ok' | 'starting' | 'down' | 'foreign';

async function withClient<T>(state: State, port: number, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: HOST,
    port,
    user: state.user,
    password: state.password,
    database,
    connectionTimeoutMillis: 3_000,
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
export async function probe(state: State, port: number, pgdata: string): Promise<ProbeResult> {
  try {
    const dir = await withClient(
      state,
      port,
      'postgres',
      async (c) => (await c.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`)).rows[0].dir,
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

export async function hasDatabase(state: State, port: number): Promise<boolean> {
  try {
    return await withClient(
      state,
      port,
      'postgres',
      async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [state.database])).rowCount === 1,
    );
  } catch {
    return false;
  }
}

export async function ensureDatabase(state: State, port: number): Promise<void> {
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

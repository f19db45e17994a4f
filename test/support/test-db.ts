import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase } from '../../src/db/embedded/index.js';

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_ADMIN_URL ?? process.env.DATABASE_URL;
  if (!url) {
    throw new Error('no test database: run jest with its globalSetup (npm test), or set DATABASE_URL');
  }
  return url;
}

/**
 * Creates an empty database named `<prefix>_<random>` for one test file and returns its URL.
 * The prefix is reduced to [a-z0-9_] (and quoted anyway), so any string is fine.
 */
export async function freshDatabaseUrl(prefix: string): Promise<string> {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 40) || 'test';
  const name = `${clean}_${randomBytes(5).toString('hex')}`;
  return createDatabase(adminUrl(), name);
}

/** Drops a database made by freshDatabaseUrl (close your pools first; open sessions are ended). */
export async function dropDatabaseUrl(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const client = new pg.Client({ connectionString: adminUrl() });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

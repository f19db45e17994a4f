import pg from 'pg';

// Helpers for any PostgreSQL server (the embedded one or DATABASE_URL's), used by the tests and
// the benchmarks.

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

// What the two request-path baselines (plain-server.ts, lean-server.ts) share with each other.
import pg from 'pg';

/**
 * A pool like order-up's (at most 20 connections), except that idle connections are kept: the
 * servers take turns under load, and a connection closed while another server is measured would
 * lose its prepared statements and cost a reconnect in the next round.
 */
export function createPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20, idleTimeoutMillis: 0 });
  pool.on('error', (err) => process.stderr.write(`idle database connection failed: ${String(err)}\n`));
  return pool;
}

/**
 * request-path.ts holds our stdin open and never writes to it: when it ends, the benchmark is gone
 * (even if it was killed outright) and this server must not outlive it.
 */
export function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** Lets the benchmark find the port (it listened on port 0). */
export function announce(port: number): void {
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
}

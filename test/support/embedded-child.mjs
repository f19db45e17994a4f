// Child process for test/embedded.test.ts: a second (third...) order-up process using the
// embedded database. Usage: node embedded-child.mjs <compiled embedded/index.js> <dataDir> <action> [value]
//   hold  - start, insert [value] into table t, print a JSON line, wait for "stop" on stdin, stop, exit
//   read  - start, print a JSON line with the rows of t, stop (no-op unless owner), exit
import pg from 'pg';

const [modulePath, dataDir, action, value] = process.argv.slice(2);
const { startEmbeddedDatabase } = await import(modulePath);

const db = await startEmbeddedDatabase({ dataDir });
const client = new pg.Client({ connectionString: db.url });
await client.connect();
await client.query('CREATE TABLE IF NOT EXISTS t (v text NOT NULL)');
if (action === 'hold' && value) await client.query('INSERT INTO t (v) VALUES ($1)', [value]);
const rows = (await client.query('SELECT v FROM t ORDER BY v')).rows.map((r) => r.v);
await client.end();
const port = Number(new URL(db.url).port);
process.stdout.write(JSON.stringify({ pid: process.pid, owned: db.owned, port, rows }) + '\n');

if (action === 'hold') {
  process.stdin.setEncoding('utf8');
  let buf = '';
  for await (const chunk of process.stdin) {
    buf += chunk;
    if (buf.includes('stop')) break;
  }
}
await db.stop();
process.stdout.write(JSON.stringify({ stopped: true }) + '\n');
process.exit(0);

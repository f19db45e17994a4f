// Load for the request-path benchmark: autocannon in this process, closed loop (each connection
// sends its next request when the previous answer is in), so req/s is what the server sustains.
import autocannon from 'autocannon';
import { cpuMsBetween, cpuSnapshot, othersShare, processTree } from './processes.js';

export interface Run {
  /** 2xx answers per second */
  rps: number;
  /** ms */
  p99: number;
  /** non-2xx answers plus connection errors and timeouts */
  failed: number;
  /** e.g. `500 x3, errors 2`, for a run with failures */
  failures: string;
  /** share of the machine used meanwhile by processes that are not part of the benchmark */
  others: number;
  /** CPU ms per 2xx answer of the server (with its children) and of PostgreSQL (NaN when it is not ours, or without answers) */
  serverCpu: number;
  dbCpu: number;
}

/**
 * `requests` in turn on each connection against `server` for `seconds`. CPU per request says what
 * each answer cost whatever else the machine was doing; req/s and latency depend on that too.
 */
export async function load(
  server: { url: string; pid: number },
  requests: autocannon.Request[],
  seconds: number,
  connections: number,
): Promise<Run> {
  const before = cpuSnapshot();
  const r = await autocannon({ url: server.url, connections, duration: seconds, requests });
  const after = cpuSnapshot();
  const serverPids = new Set(processTree(server.pid));
  const isPostgres = (_pid: number, comm: string) => comm === 'postgres';
  const hasPostgres = [...after.ours].some(([pid, { comm }]) => isPostgres(pid, comm));
  const perAnswer = (ms: number) => (r['2xx'] > 0 ? ms / r['2xx'] : NaN);
  const bad = Object.entries(r.statusCodeStats)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, { count }]) => `${code} x${count}`);
  if (r.errors > 0) bad.push(`errors ${r.errors} (timeouts ${r.timeouts})`);
  return {
    rps: r['2xx'] / r.duration,
    p99: r.latency.p99,
    failed: r.non2xx + r.errors,
    failures: bad.join(', '),
    others: othersShare(before, after),
    serverCpu: perAnswer(cpuMsBetween(before, after, (pid) => serverPids.has(pid))),
    dbCpu: hasPostgres ? perAnswer(cpuMsBetween(before, after, isPostgres)) : NaN,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

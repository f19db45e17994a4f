// Child processes of the request-path benchmark: starting a server and finding its port, stopping
// it, and reading its memory from /proc (Linux).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export interface ChildServer {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function tail(file: string, max = 3_000): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-max).trim();
  } catch {
    return '';
  }
}

/** SIGTERM, and SIGKILL if it is still there after 10 s. */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Runs `node <args>` and waits for its `... listening on <url>` line on stdout. Its stderr (where
 * the servers log) goes to `logFile`, never to the terminal. Its stdin stays open and unused: the
 * baselines exit when it ends, so they cannot outlive the benchmark.
 */
export async function startChildServer(name: string, args: string[], env: Record<string, string>, logFile: string): Promise<ChildServer> {
  const fd = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', fd] });
  } finally {
    fs.closeSync(fd);
  }
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not report its port within 60 s; its log (${logFile}):\n${tail(logFile)}`)),
        60_000,
      );
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before it listened; its log (${logFile}):\n${tail(logFile)}`));
      });
    });
    return { name, url, pid: child.pid!, stop: () => stopChild(child) };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

/** Runs `node <args>` to completion (its output to `logFile`); rejects unless it exits 0. */
export function runNode(args: string[], env: Record<string, string>, logFile: string): Promise<void> {
  const fd = fs.openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`node ${args.join(' ')} exited ${code}; its log (${logFile}):\n${tail(logFile)}`)),
      );
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** `root` and every process below it, from the parent pids in /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(Number(entry))[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    tree.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** The fields of /proc/PID/stat after the command name ([0] is the state, [1] the parent pid), and the name. */
function statFields(pid: number): string[] & { comm?: string } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields: string[] & { comm?: string } = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  fields.comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  return fields;
}

/** Resident memory (bytes) of `root` and all its descendants (order-up's workers, when it has any). */
export function treeRss(root: number): number {
  let sum = 0;
  for (const pid of processTree(root)) {
    try {
      sum += Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

/** CPU time so far, in clock ticks (10 ms): the whole machine's, and each process's of this benchmark's tree. */
export interface CpuSnapshot {
  busy: number;
  all: number;
  ours: Map<number, { ticks: number; comm: string }>;
}

export function cpuSnapshot(): CpuSnapshot {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const ours = new Map<number, { ticks: number; comm: string }>();
  for (const pid of processTree(process.pid)) {
    try {
      const fields = statFields(pid);
      ours.set(pid, { ticks: Number(fields[11]) + Number(fields[12]), comm: fields.comm ?? '' }); // utime + stime
    } catch {
      // gone meanwhile
    }
  }
  const busy = user + nice + system + irq + softirq;
  return { busy, all: busy + idle + iowait + steal, ours };
}

/**
 * CPU ms that the processes of ours picked by `which` used between two snapshots. Counted per
 * process: one that ends meanwhile loses its time in between (a difference of sums would lose its
 * whole life).
 */
export function cpuMsBetween(before: CpuSnapshot, after: CpuSnapshot, which: (pid: number, comm: string) => boolean): number {
  let ticks = 0;
  for (const [pid, { ticks: now, comm }] of after.ours) if (which(pid, comm)) ticks += now - (before.ours.get(pid)?.ticks ?? 0);
  return ticks * 10;
}

/**
 * The share of the machine that processes outside this benchmark (other work on a shared box, or a
 * DATABASE_URL server on it) used between two snapshots: anything far above 0 makes that run suspect.
 */
export function othersShare(before: CpuSnapshot, after: CpuSnapshot): number {
  const ours = cpuMsBetween(before, after, () => true) / 10;
  return Math.max(0, after.busy - before.busy - ours) / Math.max(1, after.all - before.all);
}

/** Samples treeRss(pid) every `everyMs` until stop(), which answers the peak. */
export function sampleRss(pid: number, everyMs = 200): { stop(): number } {
  let peak = 0;
  const take = () => {
    peak = Math.max(peak, treeRss(pid));
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}

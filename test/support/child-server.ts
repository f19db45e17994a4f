import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { STAFF_TOKEN } from './app.js';

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  stderr(): string;
}

/**
 * The built CLI's `serve` as a separate OS process (run `make build` first), so a test can kill it
 * the way a crash or an operator would.
 */
export async function startChildServer(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, [path.resolve('bin/order-up.js'), 'serve', '--port', '0'], {
    env: { ...process.env, ORDER_UP_STAFF_TOKENS: STAFF_TOKEN, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
  return { url, child, exited, stderr: () => err };
}

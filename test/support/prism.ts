import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PRISM = path.join(ROOT, 'node_modules', '.bin', 'prism');

export interface RunningPrism {
  url: string;
  /** Everything Prism printed so far (its log): attach it to a failure message. */
  output(): string;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (the OS picks it; Prism takes it right after). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts `prism mock <spec>` or `prism proxy <spec> <upstream>` (always with `--errors`, so a
 * contract violation becomes an error answer) on a free port of 127.0.0.1 and resolves once it
 * answers HTTP. Readiness is polled, never slept for; a Prism that exits early fails at once.
 *
 * `args` are the positional arguments and any extra flags, e.g. `['mock', 'openapi/x.yaml']` or
 * `['proxy', 'openapi/order-up.yaml', 'http://127.0.0.1:1234', '--validate-request=false']`.
 */
export async function startPrism(args: string[], opts: { readyTimeoutMs?: number } = {}): Promise<RunningPrism> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    PRISM,
    [...args, '--errors', '--cors=false', '--host', '127.0.0.1', '--port', String(port), '-v', 'warn'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } },
  );
  let log = '';
  const keep = (chunk: Buffer) => {
    log += chunk.toString('utf8');
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!exited) child.kill('SIGKILL');
    }, 3000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new Error(`prism ${args.join(' ')} exited (${exited.code ?? exited.signal}) before it was ready:\n${log}`);
    if (await answers(url)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prism ${args.join(' ')} was not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, output: () => log, stop };
}

/** True once something answers HTTP on the URL (any status: Prism only listens when it is ready). */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/__prism_readiness_probe__`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from './runtime.js';
import { createApp } from './http/app.js';

export interface RunningServer {
  url: string;
  server: http.Server;
  /** Stops accepting, lets in-flight requests (and the work they queued) finish, then closes. */
  stop(): Promise<void>;
}

export async function startServer(rt: Runtime, opts: { port: number; host: string }): Promise<RunningServer> {
  const app = await createApp(rt);
  const server = http.createServer(app);
  // Keep-alive connections must not hold a drain open forever.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, opts)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    server,
    stop: () =>
      new Promise<void>((resolve) => {
        // close() waits for in-flight requests (including those queued for the charge service);
        // keep-alive connections that fall idle meanwhile are closed as soon as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 25);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/** A port that is taken, said so that whoever ran `make run` twice knows what to do. */
function listenError(err: NodeJS.ErrnoException, opts: { port: number; host: string }): Error {
  if (err.code !== 'EADDRINUSE') return err;
  const other = opts.port + 2 > 65535 ? opts.port - 2 : opts.port + 2;
  return Object.assign(
    new Error(
      `port ${opts.port} on ${opts.host} is already in use (EADDRINUSE): is another order-up (a second \`make run\`?) serving there? ` +
        `Stop it, or pick another port: PORT=${other} make run (or order-up serve --port ${other}).`,
    ),
    { code: err.code },
  );
}

import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Makes `server` listen on `host`:`port` (0: a free port); resolves with the port it got and its
 * base URL, or rejects with the listen error (EADDRINUSE, ...).
 */
export async function listen(server: http.Server, port: number, host: string): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return { port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` };
}

/** Stops `server` at once: no new connections, and the open ones (requests in progress too) are closed. */
export function stopNow(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

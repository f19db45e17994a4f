import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from './runtime.js';
import { createApp } from './http/app.js';
import { startMetricsServer, type MetricsServer } from './metrics.js';

export interface RunningServer {
  url: string;
  server: http.Server;
  /** The tokenless metrics server (METRICS_PORT), when configured: its base URL (GET /metrics) and bound port. */
  metrics: { url: string; port: number } | undefined;
  /** Stops accepting, lets in-flight requests (and the work they queued) finish, then closes. */
  stop(): Promise<void>;
}

export async function startServer(rt: Runtime, opts: { port: number; host: string }): Promise<RunningServer> {
  const app = await createApp(rt);
  const server = http.createServer(app);
  // Keep-alive connections must not hold a drain open forever.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  let metricsServer: MetricsServer | undefined;
  if (rt.config.metricsPort !== undefined) {
    try {
      metricsServer = await startMetricsServer(rt.metrics, { port: rt.config.metricsPort, host: opts.host, log: rt.log });
    } catch (err) {
      // E.g. the port is taken: serve nothing rather than half.
      await new Promise((resolve) => server.close(resolve));
      throw err;
    }
    rt.log.info({ url: `${metricsServer.url}/metrics` }, 'metrics served without a token (METRICS_PORT)');
  }
  // The in-doubt gauge is read from the database on a timer while we serve, never per scrape.
  rt.metrics.refreshInDoubt(() => rt.db.payments.countInDoubt(), rt.log);
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    server,
    metrics: metricsServer && { url: metricsServer.url, port: metricsServer.port },
    stop: async () => {
      await new Promise<void>((resolve) => {
        // close() waits for in-flight requests (including those queued for the charge service);
        // keep-alive connections that fall idle meanwhile are closed as soon as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 25);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      await metricsServer?.stop();
      await rt.metrics.stop();
    },
  };
}

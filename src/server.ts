import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { Runtime } from './runtime.js';
import type { HttpLimits } from './config.js';
import { createApp } from './http/app.js';
import { listen } from './listen.js';
import { startMetricsServer, type MetricsServer } from './metrics.js';
import { problemFor } from './http/problem.js';
import { AppError, invalid } from './domain/errors.js';
import { requestOnSocket } from './http/request-log.js';

export interface RunningServer {
  url: string;
  server: http.Server;
  /** The tokenless metrics server (METRICS_PORT), when configured: its base URL (GET /metrics) and bound port. */
  metrics: { url: string; port: number } | undefined;
  /** Stops accepting, lets in-flight requests (and the work they queued) finish, then closes. */
  stop(): Promise<void>;
}

/**
 * The HTTP server, set for a service behind a load balancer (the README's "Limits" tells what each
 * answer means to one):
 *
 * - `keepAliveTimeout` (65 s by default) is longer than the idle timeout of common load balancers
 *   (60 s): the balancer, not order-up, closes an idle connection, so it never sends a request on a
 *   connection order-up is closing at that moment (which the balancer would answer 502).
 * - `headersTimeout` and `requestTimeout` bound how long a request may take to arrive (408), so a
 *   slow or stalled client cannot hold a connection and its memory forever; they do not limit how
 *   long order-up takes to answer.
 * - `maxConnections`: connections beyond it are closed at once (node's 'drop'), before any work.
 * - Errors node raises itself before there is a request to route (`431` headers too large, `400` a
 *   malformed request, `408` headers too slow) are answered problem+json with an X-Request-Id.
 */
export async function startServer(rt: Runtime, opts: { port: number; host: string }): Promise<RunningServer> {
  const app = await createApp(rt);
  const limits = rt.config.http;
  const server = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often node looks for requests past those timeouts (its default is every 30 s).
      connectionsCheckingInterval: checkingInterval(limits),
      // express's prototypes from birth (see expressClasses).
      ...expressClasses(app),
    },
    app,
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, rt.log));
  const { url } = await listen(server, opts.port, opts.host).catch((err: NodeJS.ErrnoException) => {
    throw listenError(err, opts);
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
  return {
    url,
    server,
    metrics: metricsServer && { url: metricsServer.url, port: metricsServer.port },
    stop: async () => {
      await new Promise<void>((resolve) => {
        // close() waits for in-flight requests (including those queued for the charge service);
        // keep-alive connections that fall idle meanwhile are closed as soon as they do, however
        // long their keep-alive timeout.
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

/**
 * The classes node makes each request and response of, with express's prototypes (app.request,
 * app.response) already in their chain. express's app.handle sets those prototypes on every request
 * (Object.setPrototypeOf); on objects node made with its own classes, that gives each request and
 * response a hidden class of its own, so every property express, the router and node add to them
 * afterwards (req.next, req.baseUrl, res.locals, res.statusCode, ...) makes V8 build another, with
 * its property table - in the old generation, which then grew by tens of MB between collections
 * under load (`make bench`'s memory mix). On these objects that call changes nothing: every request
 * shares the same few hidden classes.
 */
function expressClasses(app: Express): { IncomingMessage: typeof http.IncomingMessage; ServerResponse: typeof http.ServerResponse } {
  class Request extends http.IncomingMessage {}
  class Response<R extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<R> {}
  Object.setPrototypeOf(Request.prototype, app.request);
  Object.setPrototypeOf(Response.prototype, app.response);
  // What app.handle sets from now on: these, which inherit all of express's own.
  app.request = Request.prototype as unknown as Express['request'];
  app.response = Response.prototype as unknown as Express['response'];
  return { IncomingMessage: Request, ServerResponse: Response };
}

const answered = new WeakSet<Socket>();

/** The client closed or reset its connection (mid-request, perhaps): nobody to answer. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'HPE_INVALID_EOF_STATE']);

function checkingInterval(limits: HttpLimits): number {
  return Math.max(50, Math.min(5000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}

/** What node's own parser or timers refused, as the error order-up answers it with. */
function clientErrorProblem(err: NodeJS.ErrnoException): AppError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('headers_too_large', 'The request headers are larger than this server accepts (16 KB in all, by default).');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('request_timeout', 'The request did not arrive in time; nothing was done.');
    default:
      return invalid(
        [{ path: '', message: 'is not a valid HTTP/1.1 request' }],
        'The request could not be parsed as HTTP/1.1; nothing was done.',
      );
  }
}

/**
 * node's 'clientError': the connection carries something that is not a request it can hand to the
 * app, or a request that took too long to arrive. Answered by hand on the socket - a minimal
 * HTTP/1.1 problem+json answer that closes the connection - unless part of an answer is already out
 * or the client is gone (then the connection is just closed). A request cut off this way that had
 * already reached the app keeps its id, and its access line (request-log.ts) shows this status; one
 * that never did gets an access line here.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, log: Logger): void {
  // node reports the same broken input again as more of it arrives: answered once, the rest is
  // read and dropped (closing with unread input would reset the connection, and the client could
  // lose the answer) until the client closes, or a moment has passed.
  if (answered.has(socket)) return;
  const inProgress = socket as Socket & { _httpMessage?: { headersSent?: boolean } };
  if (CLIENT_GONE.has(err.code ?? '') || !socket.writable || inProgress._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  answered.add(socket);
  const { problem } = problemFor(clientErrorProblem(err));
  const ongoing = requestOnSocket(socket, problem.status);
  const requestId = ongoing ?? randomUUID();
  const body = JSON.stringify(problem);
  const head = [
    `HTTP/1.1 ${problem.status} ${http.STATUS_CODES[problem.status] ?? 'Error'}`,
    'Content-Type: application/problem+json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  socket.once('end', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
  if (ongoing === undefined) log.info({ reqId: requestId, status: problem.status, clientError: err.code ?? err.message }, 'request');
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

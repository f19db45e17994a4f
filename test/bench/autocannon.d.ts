// The part of autocannon's programmatic API the request-path benchmark uses (the package ships no
// types, and adding @types/autocannon is not worth a dependency for one caller).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      /** Called before each send of this request: answers the request to send. */
      setupRequest?: (request: Request, context: object) => Request;
    }
    interface Options {
      url: string;
      connections?: number;
      /** seconds */
      duration?: number;
      timeout?: number;
      /** Each connection sends these in turn, over and over. */
      requests?: Request[];
    }
    interface Histogram {
      average: number;
      p50: number;
      p99: number;
      max: number;
      total: number;
    }
    interface Result {
      /** seconds the run really took */
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      '2xx': number;
      statusCodeStats: Record<string, { count: number }>;
      /** ms */
      latency: Histogram;
      requests: Histogram;
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
    }
  }
  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export = autocannon;
}

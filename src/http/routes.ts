import type { Operation } from 'openapi-backend';
import { AppError, invalid } from '../domain/errors.js';

export interface Route {
  operation: Operation;
  /** Path parameters as sent (percent-encoded): decodeParams() checks and decodes them. */
  encodedParams: Record<string, string>;
}

interface CompiledRoute {
  operation: Operation;
  method: string;
  pattern: RegExp;
  names: string[];
  /** Characters outside {templates}: the more, the more specific (a literal segment beats a template). */
  literal: number;
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const TEMPLATE = /\{([^}]+)\}/g;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Routing from the spec's operations (openapi-backend's list), compiled once. openapi-backend's own
 * matchOperation rebuilds a regular expression for every operation on every request; this answers
 * the same way - the most specific template first, a trailing slash ignored, HEAD as GET - at a
 * fraction of the cost, and once per request.
 */
export class Router {
  private readonly routes: CompiledRoute[];

  constructor(operations: Operation[]) {
    this.routes = operations
      .map((operation) => {
        const names = [...operation.path.matchAll(TEMPLATE)].map((m) => m[1]);
        const source = operation.path
          .split(TEMPLATE)
          .map((part, i) => (i % 2 === 1 ? '([^/]+)' : escape(part)))
          .join('');
        return {
          operation,
          method: operation.method.toLowerCase(),
          pattern: new RegExp(`^${source}$`),
          names,
          literal: operation.path.replace(TEMPLATE, '').length,
        };
      })
      .sort((a, b) => b.literal - a.literal);
  }

  /** The operation for a request, or the 404/405 (with `Allow`) answer as an AppError. */
  match(method: string, rawPath: string): Route {
    const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
    const wanted = method === 'HEAD' ? 'get' : method.toLowerCase();
    let pathMatched: CompiledRoute[] | undefined;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      if (route.method === wanted)
        return { operation: route.operation, encodedParams: Object.fromEntries(route.names.map((n, i) => [n, m[i + 1]])) };
      (pathMatched ??= []).push(route);
    }
    if (!pathMatched) throw new AppError('not_found', `There is no endpoint ${method.toUpperCase()} ${rawPath}.`);
    // RFC 9110: a 405 lists the methods the resource does support.
    const methods = new Set(pathMatched.map((r) => r.method.toUpperCase()));
    if (methods.has('GET')) methods.add('HEAD');
    const allowed = METHOD_ORDER.filter((m) => methods.has(m));
    throw new AppError('method_not_allowed', `${method.toUpperCase()} is not allowed on ${rawPath}.`, { allow: allowed.join(', ') });
  }
}

/** The path parameters decoded; one that is not valid percent-encoded UTF-8 is a 400 at its name. */
export function decodeParams(route: Route): Record<string, string> {
  const params: Record<string, string> = {};
  const bad: string[] = [];
  for (const [name, value] of Object.entries(route.encodedParams)) {
    try {
      params[name] = decodeURIComponent(value);
    } catch {
      bad.push(name);
    }
  }
  if (bad.length > 0) throw invalid(bad.map((name) => ({ path: `/path/${name}`, message: 'is not valid percent-encoded UTF-8' })));
  return params;
}

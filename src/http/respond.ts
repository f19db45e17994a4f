import type { Response } from 'express';
import type { Answer } from '../domain/idempotency.js';

/** Sends a JSON answer; errors are problem+json (HEAD leaves the body out by itself). */
export function sendJson(res: Response, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', status >= 400 ? 'application/problem+json; charset=utf-8' : 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

/** Sends a handler's answer (or a stored one, for a replay). */
export function sendAnswer(res: Response, answer: Answer): void {
  if (answer.location !== undefined) res.setHeader('Location', answer.location);
  sendJson(res, answer.status, answer.body);
}

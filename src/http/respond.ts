import type { Response } from 'express';

/** Sends a JSON answer: the one content type of every success answer (HEAD leaves the body out by itself). */
export function sendJson(res: Response, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

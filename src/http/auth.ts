import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * True when the Authorization header carries one of the staff tokens. Both sides are hashed to a
 * fixed length first so the comparison takes the same time whatever the token's length or content.
 */
export function isStaff(header: string | string[] | undefined, tokens: string[]): boolean {
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value ?? '');
  if (!match) return false;
  const given = digest(match[1]);
  let ok = false;
  for (const token of tokens) ok = timingSafeEqual(given, digest(token)) || ok;
  return ok;
}

import { timingSafeEqual } from 'node:crypto';
import { sha256, type StaffHolder } from '../staff-tokens.js';

/**
 * The name of the staff member whose token the Authorization header carries, or undefined. The
 * given token is hashed and compared with every holder's digest in constant time, so the
 * comparison takes the same time whatever the token's length or content, and whichever matches.
 */
export function staffHolder(header: string | string[] | undefined, holders: StaffHolder[]): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value ?? '');
  if (!match) return undefined;
  const given = sha256(match[1]);
  let found: string | undefined;
  for (const holder of holders) {
    if (timingSafeEqual(given, holder.digest) && found === undefined) found = holder.name;
  }
  return found;
}

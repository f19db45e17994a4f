import { createHash } from 'node:crypto';

/** Who holds a staff token, and the token's SHA-256 digest (the token itself is not kept). */
export interface StaffHolder {
  name: string;
  digest: Buffer;
}

export const STAFF_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/i;

export const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Reads ORDER_UP_STAFF_TOKENS entries: `name:token`, `name:sha256:<64 hex>` (the digest only, so the
 * configuration need not hold the token in clear), or a bare `token` held by `staff`. Returns the
 * holders, or the 1-based position of the first malformed entry - never its text, which may be a
 * secret.
 */
export function parseStaffTokens(entries: string[]): { holders: StaffHolder[] } | { malformed: number } {
  const holders: StaffHolder[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    if (colon === -1) {
      holders.push({ name: 'staff', digest: sha256(entry) });
      continue;
    }
    const name = entry.slice(0, colon);
    const rest = entry.slice(colon + 1);
    // `sha256` is never a holder: `sha256:<hex>` without a name is a mistake, not a token.
    if (!STAFF_NAME.test(name) || name === 'sha256' || rest.length === 0) return { malformed: i + 1 };
    if (rest.startsWith('sha256:')) {
      const hex = rest.slice('sha256:'.length);
      if (!SHA256_HEX.test(hex)) return { malformed: i + 1 };
      holders.push({ name, digest: Buffer.from(hex, 'hex') });
    } else {
      holders.push({ name, digest: sha256(rest) });
    }
  }
  return { holders };
}

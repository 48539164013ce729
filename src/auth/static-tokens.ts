/**
 * Static service tokens (AUTH_TOKENS): each entry is
 * `sha256:<hex of the token>:principal:tenant:scope|scope`, so the
 * configuration never holds a usable token. A presented token is hashed and
 * compared with every entry in constant time (`crypto.timingSafeEqual`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { identityProblem, type Identity } from './identity.js';

interface StaticGrant {
  readonly hash: Buffer;
  readonly identity: Identity;
}

/** The hex SHA-256 of a token, as AUTH_TOKENS stores it (`printf %s "$TOKEN" | sha256sum`). */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The AUTH_TOKENS entry for a token (tests, `npm start -- --secure`). */
export function tokenEntry(token: string, principal: string, tenant: string, scopes: readonly string[]): string {
  return `sha256:${tokenHash(token)}:${principal}:${tenant}:${scopes.join('|')}`;
}

export class StaticTokens {
  private constructor(private readonly grants: readonly StaticGrant[]) {}

  /**
   * Parses AUTH_TOKENS. Returns the problems instead of throwing, so they join
   * the other configuration problems; a problem never quotes the entry (it may
   * be a plaintext token).
   */
  static parse(spec: string): { tokens: StaticTokens; problems: string[] } {
    const grants: StaticGrant[] = [];
    const problems: string[] = [];
    spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .forEach((item, i) => {
        const parts = item.split(':');
        const [kind, hex, principal, tenant, scopes] = parts;
        if (kind !== 'sha256' || parts.length !== 5) {
          problems.push(
            `AUTH_TOKENS entry ${i + 1} is not sha256:<hex>:principal:tenant:scope|scope — plaintext tokens are no longer accepted; ` +
              'store the SHA-256 of the token instead (printf %s "$TOKEN" | sha256sum)',
          );
          return;
        }
        if (!/^[0-9a-f]{64}$/i.test(hex ?? '')) problems.push(`AUTH_TOKENS entry ${i + 1}: the hash must be 64 hex digits`);
        else if (!principal) problems.push(`AUTH_TOKENS entry ${i + 1}: the principal is empty`);
        else if (!scopes) problems.push(`AUTH_TOKENS entry ${i + 1}: no scopes`);
        else {
          const identity = { principal, tenant: tenant ?? '', scopes: scopes.split('|').filter(Boolean) };
          const problem = identityProblem(identity);
          if (problem) problems.push(`AUTH_TOKENS entry ${i + 1}: the ${problem.field} ${problem.description}`);
          else grants.push({ hash: Buffer.from(hex!, 'hex'), identity });
        }
      });
    return { tokens: new StaticTokens(grants), problems };
  }

  get size(): number {
    return this.grants.length;
  }

  /** The identity of `token`, or undefined. Every entry is compared, whichever matches. */
  identify(token: string): Identity | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: Identity | undefined;
    for (const g of this.grants) if (timingSafeEqual(presented, g.hash) && !found) found = g.identity;
    return found;
  }
}

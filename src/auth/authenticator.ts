/**
 * Turns a call's `authorization` metadata into an `Identity`: a static
 * service token, or a JWT; without one, the call's verified TLS client
 * certificate when AUTH_CLIENT_CERTS names it. Verified JWTs are cached per token string until
 * their `exp` (a bounded LRU), so a stream or a busy client is verified once,
 * not per command.
 */
import { UnauthenticatedError } from '../errors.js';
import { ANONYMOUS, type Identity } from './identity.js';
import { JwtVerifier } from './jwt.js';
import { StaticTokens } from './static-tokens.js';
import type { AuthSettings } from './settings.js';

export interface Authenticator {
  /**
   * The caller's identity.
   *
   * @throws UnauthenticatedError for missing, unknown, expired or otherwise invalid credentials.
   */
  authenticate(authorization: string | undefined, certificateIdentities?: readonly string[]): Identity | Promise<Identity>;
}

/** Insecure mode without any configured credentials: every caller is ANONYMOUS (tenant '', scope `*`). */
export const OPEN: Authenticator = { authenticate: () => ANONYMOUS };

/** Verified identities cached at most. @default 10000 */
export const DEFAULT_AUTH_CACHE_ENTRIES = 10_000;

export class TokenAuthenticator implements Authenticator {
  private readonly cache = new Map<string, Identity>();

  constructor(
    private readonly tokens: StaticTokens | undefined,
    private readonly jwt: JwtVerifier | undefined,
    private readonly maxCached = DEFAULT_AUTH_CACHE_ENTRIES,
    private readonly now: () => number = Date.now,
    private readonly clientCerts: ReadonlyMap<string, Identity> | undefined = undefined,
  ) {}

  authenticate(authorization: string | undefined, certificateIdentities: readonly string[] = []): Identity | Promise<Identity> {
    if (authorization === undefined && this.clientCerts) {
      for (const name of certificateIdentities) {
        const known = this.clientCerts.get(name);
        if (known) return known;
      }
    }
    const token = /^Bearer +(\S+)$/i.exec(authorization ?? '')?.[1];
    if (token === undefined) throw new UnauthenticatedError(authorization === undefined ? 'no credentials' : 'the authorization header is not "Bearer <token>"');
    const cached = this.cache.get(token);
    if (cached) {
      if ((cached.expiresAt ?? Infinity) > this.now()) {
        // Most recently used last: the Map's order is the LRU order.
        this.cache.delete(token);
        this.cache.set(token, cached);
        return cached;
      }
      this.cache.delete(token);
      throw new UnauthenticatedError('the token has expired');
    }
    const known = this.tokens?.identify(token);
    if (known) return known;
    if (!this.jwt) throw new UnauthenticatedError('unknown token');
    return this.jwt.verify(token).then((identity) => {
      this.cache.set(token, identity);
      if (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
      return identity;
    });
  }
}

/** The authenticator for these settings: OPEN when no method is configured (the gate allows that only in insecure mode). */
export function createAuthenticator(settings: AuthSettings): Authenticator {
  if (!settings.tokens && !settings.jwt && !settings.clientCerts) return OPEN;
  return new TokenAuthenticator(settings.tokens, settings.jwt ? new JwtVerifier(settings.jwt) : undefined, settings.cacheMaxEntries, Date.now, settings.clientCerts);
}

/**
 * Who may run which commands. Credentials are bearer tokens in the
 * `authorization` metadata; each token names a principal and the aggregate
 * types it may command (`*` for all). With no tokens configured, every
 * caller is allowed (development); production configures tokens.
 */
import { PermissionDeniedError, UnauthenticatedError } from '../errors.js';

export interface Grant {
  readonly principal: string;
  /** Aggregate types this principal may command; `*` = all. */
  readonly scopes: readonly string[];
}

export interface Authorizer {
  /** Returns the principal, or throws UnauthenticatedError / PermissionDeniedError. */
  authorize(authorization: string | undefined, aggregateType: string): string;
  /** Reading events (subscriptions): the `read` scope or `*`. Returns the principal, or throws as `authorize`. */
  authorizeRead(authorization: string | undefined): string;
}

/** Allows every caller: used when no tokens are configured. */
export const ALLOW_ALL: Authorizer = { authorize: () => 'anonymous', authorizeRead: () => 'anonymous' };

/** The scope that lets a principal read every event (subscriptions, consumer groups). */
export const READ_SCOPE = 'read';

export class TokenAuthorizer implements Authorizer {
  constructor(private readonly grants: ReadonlyMap<string, Grant>) {}

  authorize(authorization: string | undefined, aggregateType: string): string {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const grant = token === undefined ? undefined : this.grants.get(token);
    if (!grant) throw new UnauthenticatedError();
    if (!grant.scopes.includes('*') && !grant.scopes.includes(aggregateType)) {
      throw new PermissionDeniedError(`${grant.principal} may not command ${aggregateType}`);
    }
    return grant.principal;
  }

  authorizeRead(authorization: string | undefined): string {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const grant = token === undefined ? undefined : this.grants.get(token);
    if (!grant) throw new UnauthenticatedError();
    if (!grant.scopes.includes('*') && !grant.scopes.includes(READ_SCOPE)) throw new PermissionDeniedError(`${grant.principal} may not read events`);
    return grant.principal;
  }
}

/**
 * Parses `token:principal:scope|scope,...` (the AUTH_TOKENS setting).
 * Throws on a malformed entry so a typo fails start-up, not a request.
 */
export function parseGrants(spec: string): Map<string, Grant> {
  const grants = new Map<string, Grant>();
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [token, principal, scopes] = item.split(':');
    if (!token || !principal || !scopes) throw new Error(`AUTH_TOKENS entry "${item.slice(0, 8)}…" is not token:principal:scopes`);
    grants.set(token, { principal, scopes: scopes.split('|') });
  }
  return grants;
}

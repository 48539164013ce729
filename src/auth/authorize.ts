/**
 * The pipeline's authorization of one command: the caller's identity (verified
 * by the server's interceptor, or by the router for a link frame) must still
 * be valid and hold the command's aggregate type as a scope (or `*`). The
 * tenant is checked once the stream's tenant is known (`mayAccessTenant`).
 */
import { PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { ANONYMOUS, hasScope, type Identity } from './identity.js';

export interface Authorizer {
  /** Returns the identity the command runs as, or throws UnauthenticatedError / PermissionDeniedError. */
  authorize(identity: Identity | undefined, aggregateType: string): Identity;
}

/** Allows every command; a call without identity runs as ANONYMOUS (unit tests of the pipeline). */
export const ALLOW_ALL: Authorizer = { authorize: (identity) => identity ?? ANONYMOUS };

/** Deny by default: no identity, an expired one, or one without the scope is refused. */
export class ScopeAuthorizer implements Authorizer {
  constructor(private readonly now: () => number = Date.now) {}

  authorize(identity: Identity | undefined, aggregateType: string): Identity {
    if (!identity) throw new UnauthenticatedError('no credentials');
    // A long-lived stream keeps the identity it was opened with; it ends being valid at its expiry.
    if (identity.expiresAt !== undefined && identity.expiresAt <= this.now()) throw new UnauthenticatedError('the token has expired');
    if (!hasScope(identity, aggregateType)) throw new PermissionDeniedError(`${identity.principal} may not command ${aggregateType}`);
    return identity;
  }
}

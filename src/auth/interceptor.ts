/**
 * The authentication and coarse authorization of every call, as a grpc-js
 * server interceptor: it runs before any handler, looks the method up in the
 * permission table (no entry: refused), authenticates the caller and checks
 * the method's scope. The verified identity replaces whatever the caller sent
 * under the identity metadata keys, so a handler reads only identities this
 * server (or, on the link, the router) verified. Fine-grained checks (the
 * aggregate type's scope, the tenant) are the pipeline's and the readers'.
 */
import * as grpc from '@grpc/grpc-js';
import { PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { toServiceError } from '../grpc/status.js';
import { peerIdentities } from '../grpc/tls.js';
import type { Authenticator } from './authenticator.js';
import { ADMIN_SCOPE, IDENTITY_KEYS, READ_SCOPE, hasScope, identityEntries, identityOfMetadata, type Identity } from './identity.js';
import type { PermissionTable } from './permissions.js';

export interface AuthInterceptorDeps {
  readonly authenticator: Authenticator;
  readonly permissions: PermissionTable;
  /** Counts refusals by code (never by anything the caller sent). */
  readonly onRefused?: (code: grpc.status) => void;
  /**
   * Certificate identities (the router's, TLS_LINK_IDENTITIES) whose calls
   * carry an identity they verified themselves, as `identityEntries`: a
   * shard takes it as it is for a call the router forwards (ReadStream of a
   * caller the router knows by its certificate, which has no token to pass on).
   */
  readonly forwardedBy?: ReadonlySet<string>;
}

/** Checks `identity` against what the method needs. @throws PermissionDeniedError */
export function checkPermission(identity: Identity, permission: 'command' | 'read' | 'admin'): void {
  if (permission === 'read' && !hasScope(identity, READ_SCOPE)) throw new PermissionDeniedError(`${identity.principal} may not read events (needs the "${READ_SCOPE}" scope)`);
  if (permission === 'admin' && !hasScope(identity, ADMIN_SCOPE)) throw new PermissionDeniedError(`${identity.principal} may not run admin operations (needs the "${ADMIN_SCOPE}" scope)`);
}

export function authInterceptor(deps: AuthInterceptorDeps): grpc.ServerInterceptor {
  return (method, call) => {
    const refusing: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const refuse = (err: unknown) => {
              const status = toServiceError(err);
              deps.onRefused?.(status.code);
              refusing.sendStatus({ code: status.code, details: status.details ?? '', metadata: status.metadata ?? null });
            };
            const forwarded = deps.forwardedBy && peerIdentities(call).some((id) => deps.forwardedBy!.has(id)) ? identityOfMetadata(metadata) : undefined;
            for (const key of Object.values(IDENTITY_KEYS)) metadata.remove(key);
            const permission = deps.permissions.get(method.path);
            if (permission === undefined) {
              refuse(new PermissionDeniedError('no authorization rule admits this method'));
              return;
            }
            if (permission === 'public' || permission === 'link') {
              pass(metadata);
              return;
            }
            const raw = metadata.get('authorization')[0];
            const admit = (identity: Identity) => {
              try {
                checkPermission(identity, permission);
              } catch (err) {
                refuse(err);
                return;
              }
              for (const [k, v] of identityEntries(identity)) metadata.set(k, v);
              pass(metadata);
            };
            if (forwarded) {
              if ((forwarded.expiresAt ?? Infinity) <= Date.now()) refuse(new UnauthenticatedError('the token has expired'));
              else admit(forwarded);
              return;
            }
            try {
              // A certificate identifies only a call without a token: read it only then.
              const token = typeof raw === 'string' ? raw : undefined;
              const identity = deps.authenticator.authenticate(token, token === undefined ? peerIdentities(call) : []);
              if (identity instanceof Promise) identity.then(admit, refuse);
              else admit(identity);
            } catch (err) {
              refuse(err);
            }
          },
        }),
    });
    return refusing;
  };
}

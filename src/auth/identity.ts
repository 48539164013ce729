/**
 * Who a caller is, once authenticated: a principal, the tenant its aggregates
 * belong to, and its scopes. Scopes are aggregate types (may command that
 * type), `read` (ReadStream, subscriptions, consumer groups), `admin` (ring
 * and rebalancing operations) and `*` (everything, across tenants).
 */

export interface Identity {
  readonly principal: string;
  /** The tenant; `''` for a principal bound to no tenant (insecure mode, a token without a tenant). */
  readonly tenant: string;
  readonly scopes: readonly string[];
  /** When the credentials stop being valid (ms since epoch); undefined = no expiry (static tokens). */
  readonly expiresAt?: number;
}

/** Longest principal an identity may name (it is recorded with every event it causes). @default 256 */
export const MAX_PRINCIPAL_LENGTH = 256;
/** Longest tenant (recorded with every event, and the key of tenant isolation). @default 128 */
export const MAX_TENANT_LENGTH = 128;
/** Most scopes one identity may hold. @default 64 */
export const MAX_SCOPES = 64;
/** Longest scope. @default 128 */
export const MAX_SCOPE_LENGTH = 128;

/**
 * Why an identity's principal, tenant or scopes cannot be accepted, as
 * `{ field, description }`, or undefined when they can. They are recorded
 * with every event (I14) and travel as metadata, so they are bounded like any
 * other input: a principal of 1..{@link MAX_PRINCIPAL_LENGTH} characters and a
 * tenant of 0..{@link MAX_TENANT_LENGTH}, neither with control characters; at
 * most {@link MAX_SCOPES} scopes of 1..{@link MAX_SCOPE_LENGTH} characters
 * without spaces or control characters. The description never quotes the value.
 */
export function identityProblem(identity: Pick<Identity, 'principal' | 'tenant' | 'scopes'>): { field: 'principal' | 'tenant' | 'scopes'; description: string } | undefined {
  const printable = (v: string) => !/[\p{Cc}\u2028\u2029]/u.test(v);
  if (identity.principal.length === 0 || identity.principal.length > MAX_PRINCIPAL_LENGTH || !printable(identity.principal)) {
    return { field: 'principal', description: `must be 1..${MAX_PRINCIPAL_LENGTH} characters without control characters` };
  }
  if (identity.tenant.length > MAX_TENANT_LENGTH || !printable(identity.tenant)) {
    return { field: 'tenant', description: `must be at most ${MAX_TENANT_LENGTH} characters without control characters` };
  }
  if (identity.scopes.length > MAX_SCOPES || identity.scopes.some((x) => x.length === 0 || x.length > MAX_SCOPE_LENGTH || !printable(x) || /\s/.test(x))) {
    return { field: 'scopes', description: `must be at most ${MAX_SCOPES} scopes of 1..${MAX_SCOPE_LENGTH} characters without spaces or control characters` };
  }
  return undefined;
}

/** Every permission. */
export const ALL_SCOPE = '*';
/** Reading events: ReadStream, subscriptions, consumer groups. */
export const READ_SCOPE = 'read';
/** Ring and rebalancing operations. */
export const ADMIN_SCOPE = 'admin';

/** The identity of every caller in insecure mode without configured credentials. */
export const ANONYMOUS: Identity = Object.freeze({ principal: 'anonymous', tenant: '', scopes: Object.freeze([ALL_SCOPE]) });

export function hasScope(identity: Identity, scope: string): boolean {
  return identity.scopes.includes(ALL_SCOPE) || identity.scopes.includes(scope);
}

/**
 * Whether `identity` may touch an aggregate of `tenant`. Only the `*` scope
 * crosses tenants (an `admin` principal runs the ring, it does not read or
 * write other tenants' data).
 */
export function mayAccessTenant(identity: Identity, tenant: string): boolean {
  return identity.tenant === tenant || identity.scopes.includes(ALL_SCOPE);
}

/**
 * Metadata keys that carry a verified identity: set by a server's
 * authentication interceptor (which first drops whatever a caller sent under
 * these names) and by the router on each frame of its link to a shard.
 */
export const IDENTITY_KEYS = {
  principal: 'x-shardwrite-principal',
  tenant: 'x-shardwrite-tenant',
  scopes: 'x-shardwrite-scopes',
  expiresAt: 'x-shardwrite-expires-at',
} as const;

/**
 * The metadata key on which a router tells a shard, per link frame, whom a
 * command counts against for fairness (`callerKey`). Set only by the router
 * (it drops a caller's own value); a shard reads it only from link frames.
 */
export const CALLER_KEY = 'x-shardwrite-caller';

/**
 * Whom a call counts against in the budgets' shares: its principal when the
 * caller authenticated as one (a principal's connections share one share),
 * else its connection (`peer`, as `getPeer()` names it) — in insecure mode
 * every caller is ANONYMOUS and only its connection tells callers apart.
 */
export function callerKey(identity: Identity | undefined, peer: string): string {
  return identity !== undefined && identity.principal !== ANONYMOUS.principal ? `principal:${identity.principal}` : `peer:${peer}`;
}

/** The identity as metadata entries (values URI-encoded: metadata is printable ASCII). */
export function identityEntries(identity: Identity): [string, string][] {
  const entries: [string, string][] = [
    [IDENTITY_KEYS.principal, encodeURIComponent(identity.principal)],
    [IDENTITY_KEYS.tenant, encodeURIComponent(identity.tenant)],
    [IDENTITY_KEYS.scopes, identity.scopes.map(encodeURIComponent).join(' ')],
  ];
  if (identity.expiresAt !== undefined) entries.push([IDENTITY_KEYS.expiresAt, String(identity.expiresAt)]);
  return entries;
}

/** The identity carried by `identityEntries`, or undefined when there is none (or it is malformed). */
export function identityFrom(text: (key: string) => string | undefined): Identity | undefined {
  const principal = text(IDENTITY_KEYS.principal);
  const tenant = text(IDENTITY_KEYS.tenant);
  const scopes = text(IDENTITY_KEYS.scopes);
  if (principal === undefined || tenant === undefined || scopes === undefined) return undefined;
  const expires = text(IDENTITY_KEYS.expiresAt);
  try {
    return {
      principal: decodeURIComponent(principal),
      tenant: decodeURIComponent(tenant),
      scopes: scopes.split(' ').filter(Boolean).map(decodeURIComponent),
      ...(expires !== undefined && /^\d+$/.test(expires) ? { expiresAt: Number(expires) } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The identity a server's auth interceptor put on a call's metadata (see `identityFrom`). */
export function identityOfMetadata(metadata: { get(key: string): unknown[] }): Identity | undefined {
  return identityFrom((key) => {
    const v = metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  });
}

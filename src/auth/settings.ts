/**
 * The authentication settings every serving process reads (router, shard),
 * validated with the rest of its configuration.
 */
import { choice, int, text, url, type EnvReader } from '../config.js';
import { DEFAULT_AUTH_CACHE_ENTRIES } from './authenticator.js';
import { DEFAULT_JWT_ALGORITHMS, type JwtSettings } from './jwt.js';
import { securityProblems } from './mode.js';
import { StaticTokens } from './static-tokens.js';
import { identityProblem, type Identity } from './identity.js';

export interface AuthSettings {
  /** SHARDWRITE_INSECURE — `true` allows starting without authentication (and logs a warning); default false. */
  readonly insecure: boolean;
  /** AUTH_TOKENS — static service tokens, `sha256:<hex>:principal:tenant:scope|scope,…`; unset = none. */
  readonly tokens: StaticTokens | undefined;
  /** JWT verification; set when AUTH_JWKS_FILE or AUTH_JWKS_URL is. See `JwtSettings`. */
  readonly jwt: JwtSettings | undefined;
  /**
   * AUTH_CLIENT_CERTS — callers identified by their TLS client certificate (verified against
   * TLS_CA_FILE) instead of a token: `<certificate identity>:principal:tenant:scope|scope,…`, the
   * identity being a DNS or URI subject alternative name or the common name. Unset = none.
   */
  readonly clientCerts: ReadonlyMap<string, Identity> | undefined;
  /** AUTH_CACHE_MAX_ENTRIES — verified tokens cached; default {@link DEFAULT_AUTH_CACHE_ENTRIES}. */
  readonly cacheMaxEntries: number;
}

/** The settings `readAuthSettings` reads (see `AuthSettings` and `JwtSettings`). */
export const AUTH_SETTINGS = {
  SHARDWRITE_INSECURE: choice('false', ['true', 'false']),
  AUTH_TOKENS: text(),
  AUTH_JWKS_FILE: text(),
  AUTH_JWKS_URL: url('https:', 'http:'),
  AUTH_JWT_ISSUER: text(),
  AUTH_JWT_AUDIENCE: text(),
  AUTH_JWT_ALGORITHMS: text(DEFAULT_JWT_ALGORITHMS.join(',')),
  AUTH_JWT_CLOCK_TOLERANCE_S: int(30, 0, 600),
  AUTH_CLAIM_PRINCIPAL: text('sub'),
  AUTH_CLAIM_TENANT: text('tenant'),
  AUTH_CLAIM_SCOPES: text('scope'),
  AUTH_CACHE_MAX_ENTRIES: int(DEFAULT_AUTH_CACHE_ENTRIES, 1, 10_000_000),
  AUTH_CLIENT_CERTS: text(),
} as const;

/** Hosts a JWKS may be fetched from over plain http. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * Reads the authentication settings; problems (including the secure-by-default
 * gate's, for which `tls` says whether the process has TLS configured) go to `r`.
 */
export function readAuthSettings(r: EnvReader<typeof AUTH_SETTINGS>, tls: boolean): AuthSettings {
  const insecure = r.oneOf('SHARDWRITE_INSECURE') === 'true';
  const spec = r.optionalString('AUTH_TOKENS');
  let tokens: StaticTokens | undefined;
  if (spec) {
    const parsed = StaticTokens.parse(spec);
    for (const p of parsed.problems) r.problem(p);
    tokens = parsed.tokens.size > 0 ? parsed.tokens : undefined;
  }
  const jwksFile = r.optionalString('AUTH_JWKS_FILE');
  const jwksUrl = r.url('AUTH_JWKS_URL', false);
  // Whoever can answer the key set can sign tokens: plain http only where nobody else is on the path.
  const parsedJwksUrl = parsedUrl(jwksUrl);
  if (parsedJwksUrl?.protocol === 'http:' && !LOOPBACK_HOSTS.has(parsedJwksUrl.hostname)) {
    r.problem('AUTH_JWKS_URL must be https:// (http:// only on loopback: whoever answers it can sign tokens)');
  }
  let jwt: JwtSettings | undefined;
  if (jwksFile && jwksUrl) r.problem('set one of AUTH_JWKS_FILE and AUTH_JWKS_URL, not both');
  if (jwksFile || jwksUrl) {
    const algorithms = r
      .string('AUTH_JWT_ALGORITHMS')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const a of algorithms) if (!SUPPORTED_ALGORITHMS.includes(a)) r.problem(`AUTH_JWT_ALGORITHMS: ${a} is not an accepted asymmetric algorithm (${SUPPORTED_ALGORITHMS.join(', ')})`);
    jwt = {
      ...(jwksFile ? { jwksFile } : {}),
      ...(jwksUrl ? { jwksUrl } : {}),
      issuer: r.requiredString('AUTH_JWT_ISSUER'),
      audience: r
        .requiredString('AUTH_JWT_AUDIENCE')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      algorithms,
      principalClaim: r.string('AUTH_CLAIM_PRINCIPAL'),
      tenantClaim: r.string('AUTH_CLAIM_TENANT'),
      scopesClaim: r.string('AUTH_CLAIM_SCOPES'),
      clockToleranceSeconds: r.int('AUTH_JWT_CLOCK_TOLERANCE_S'),
    };
  }
  const clientCerts = parseClientCerts(r);
  if (clientCerts && !tls) r.problem('AUTH_CLIENT_CERTS needs TLS (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE): client certificates are verified against TLS_CA_FILE');
  const settings: AuthSettings = { insecure, tokens, jwt, clientCerts, cacheMaxEntries: r.int('AUTH_CACHE_MAX_ENTRIES') };
  for (const p of securityProblems(settings, tls)) r.problem(p);
  return settings;
}

/** AUTH_CLIENT_CERTS: `<certificate identity>:principal:tenant:scope|scope,…`. */
function parseClientCerts(r: EnvReader<typeof AUTH_SETTINGS>): Map<string, Identity> | undefined {
  const spec = r.optionalString('AUTH_CLIENT_CERTS');
  if (!spec) return undefined;
  const out = new Map<string, Identity>();
  spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const [name, principal, tenant, scopes, ...rest] = entry.split(':');
      if (!name || !principal || tenant === undefined || !scopes || rest.length > 0) {
        r.problem(`AUTH_CLIENT_CERTS entry ${i + 1} is not <certificate identity>:principal:tenant:scope|scope`);
        return;
      }
      const identity = { principal, tenant, scopes: scopes.split('|').filter(Boolean) };
      const problem = identityProblem(identity);
      if (problem) r.problem(`AUTH_CLIENT_CERTS entry ${i + 1}: the ${problem.field} ${problem.description}`);
      else out.set(name, identity);
    });
  return out.size > 0 ? out : undefined;
}

/** `url` parsed, or undefined when it does not parse (`r.url` already reported that; a thrown TypeError would carry the URL). */
function parsedUrl(url: string | undefined): URL | undefined {
  try {
    return url === undefined ? undefined : new URL(url);
  } catch {
    return undefined;
  }
}

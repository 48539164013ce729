/**
 * The authentication settings every serving process reads (router, shard),
 * validated with the rest of its configuration.
 */
import type { EnvReader } from '../config.js';
import { DEFAULT_AUTH_CACHE_ENTRIES } from './authenticator.js';
import { DEFAULT_JWT_ALGORITHMS, type JwtSettings } from './jwt.js';
import { securityProblems } from './mode.js';
import { StaticTokens } from './static-tokens.js';

export interface AuthSettings {
  /** SHARDWRITE_INSECURE — `true` allows starting without authentication (and logs a warning); default false. */
  readonly insecure: boolean;
  /** AUTH_TOKENS — static service tokens, `sha256:<hex>:principal:tenant:scope|scope,…`; unset = none. */
  readonly tokens: StaticTokens | undefined;
  /** JWT verification; set when AUTH_JWKS_FILE or AUTH_JWKS_URL is. See `JwtSettings`. */
  readonly jwt: JwtSettings | undefined;
  /** AUTH_CACHE_MAX_ENTRIES — verified tokens cached; default 10,000. */
  readonly cacheMaxEntries: number;
}

export const AUTH_ENV = [
  'SHARDWRITE_INSECURE', 'AUTH_TOKENS', 'AUTH_JWKS_FILE', 'AUTH_JWKS_URL', 'AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE',
  'AUTH_JWT_ALGORITHMS', 'AUTH_JWT_CLOCK_TOLERANCE_S', 'AUTH_CLAIM_PRINCIPAL', 'AUTH_CLAIM_TENANT', 'AUTH_CLAIM_SCOPES',
  'AUTH_CACHE_MAX_ENTRIES',
] as const;

const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Reads the authentication settings; problems (including the secure-by-default gate's) go to `r`. */
export function readAuthSettings(r: EnvReader): AuthSettings {
  const insecure = r.oneOf('SHARDWRITE_INSECURE', 'false', ['true', 'false']) === 'true';
  const spec = r.optionalString('AUTH_TOKENS');
  let tokens: StaticTokens | undefined;
  if (spec) {
    const parsed = StaticTokens.parse(spec);
    for (const p of parsed.problems) r.problem(p);
    tokens = parsed.tokens.size > 0 ? parsed.tokens : undefined;
  }
  const jwksFile = r.optionalString('AUTH_JWKS_FILE');
  const jwksUrl = r.url('AUTH_JWKS_URL', ['https:', 'http:'], false);
  let jwt: JwtSettings | undefined;
  if (jwksFile && jwksUrl) r.problem('set one of AUTH_JWKS_FILE and AUTH_JWKS_URL, not both');
  if (jwksFile || jwksUrl) {
    const algorithms = r.string('AUTH_JWT_ALGORITHMS', DEFAULT_JWT_ALGORITHMS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
    for (const a of algorithms) if (!SUPPORTED_ALGORITHMS.includes(a)) r.problem(`AUTH_JWT_ALGORITHMS: ${a} is not an accepted asymmetric algorithm (${SUPPORTED_ALGORITHMS.join(', ')})`);
    jwt = {
      ...(jwksFile ? { jwksFile } : {}),
      ...(jwksUrl ? { jwksUrl } : {}),
      issuer: r.requiredString('AUTH_JWT_ISSUER'),
      audience: r.requiredString('AUTH_JWT_AUDIENCE').split(',').map((s) => s.trim()).filter(Boolean),
      algorithms,
      principalClaim: r.string('AUTH_CLAIM_PRINCIPAL', 'sub'),
      tenantClaim: r.string('AUTH_CLAIM_TENANT', 'tenant'),
      scopesClaim: r.string('AUTH_CLAIM_SCOPES', 'scope'),
      clockToleranceSeconds: r.int('AUTH_JWT_CLOCK_TOLERANCE_S', 30, 0, 600),
    };
  }
  const settings: AuthSettings = { insecure, tokens, jwt, cacheMaxEntries: r.int('AUTH_CACHE_MAX_ENTRIES', DEFAULT_AUTH_CACHE_ENTRIES, 1, 10_000_000) };
  for (const p of securityProblems(settings)) r.problem(p);
  return settings;
}

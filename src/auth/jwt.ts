/**
 * JWT bearer tokens, verified with `jose`: signature by a key of the
 * configured JWKS (a local file, or a URL fetched and cached by
 * `createRemoteJWKSet`), algorithms pinned, `iss`, `aud` and `exp` required,
 * claims mapped to an identity by configuration.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { UnauthenticatedError } from '../errors.js';
import { identityProblem, type Identity } from './identity.js';

export interface JwtSettings {
  /** AUTH_JWKS_FILE — a local JWKS JSON file; one of it or `jwksUrl`. */
  readonly jwksFile?: string;
  /** AUTH_JWKS_URL — a JWKS endpoint (https, or http on loopback). */
  readonly jwksUrl?: string;
  /** AUTH_JWT_ISSUER — required `iss`. */
  readonly issuer: string;
  /** AUTH_JWT_AUDIENCE — required `aud` (comma-separated: any of them). */
  readonly audience: readonly string[];
  /** AUTH_JWT_ALGORITHMS — accepted `alg`s; default {@link DEFAULT_JWT_ALGORITHMS}. */
  readonly algorithms: readonly string[];
  /** AUTH_CLAIM_PRINCIPAL — the claim naming the principal; default `sub`. */
  readonly principalClaim: string;
  /** AUTH_CLAIM_TENANT — the tenant claim; default `tenant` (absent = no tenant, `''`). */
  readonly tenantClaim: string;
  /** AUTH_CLAIM_SCOPES — scopes/roles, a space-separated string or an array; default `scope`. */
  readonly scopesClaim: string;
  /** Tolerated clock skew in seconds; AUTH_JWT_CLOCK_TOLERANCE_S, default 30. */
  readonly clockToleranceSeconds: number;
}

/** @default RS256, ES256 and EdDSA: asymmetric only, so a verifier never holds a signing secret. */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly settings: JwtSettings) {
    if (settings.jwksFile) this.keys = createLocalJWKSet(JSON.parse(readFileSync(settings.jwksFile, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
    else if (settings.jwksUrl) this.keys = createRemoteJWKSet(new URL(settings.jwksUrl));
    else throw new Error('JwtVerifier needs AUTH_JWKS_FILE or AUTH_JWKS_URL');
  }

  /**
   * The identity of a valid token.
   *
   * @throws UnauthenticatedError naming what failed (never quoting the token).
   */
  async verify(token: string): Promise<Identity> {
    const s = this.settings;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: s.issuer,
        audience: [...s.audience],
        algorithms: [...s.algorithms],
        requiredClaims: ['exp', 'iss', 'aud', s.principalClaim],
        clockTolerance: s.clockToleranceSeconds,
      }));
    } catch (err) {
      throw new UnauthenticatedError(describe(err));
    }
    const principal = payload[s.principalClaim];
    if (typeof principal !== 'string' || principal === '') throw new UnauthenticatedError(`the token's "${s.principalClaim}" claim is not a principal`);
    const tenant = payload[s.tenantClaim] ?? '';
    if (typeof tenant !== 'string') throw new UnauthenticatedError(`the token's "${s.tenantClaim}" claim is not a tenant`);
    const raw = payload[s.scopesClaim] ?? [];
    const scopes = typeof raw === 'string' ? raw.split(' ').filter(Boolean) : Array.isArray(raw) && raw.every((x) => typeof x === 'string') ? raw : undefined;
    if (!scopes) throw new UnauthenticatedError(`the token's "${s.scopesClaim}" claim is not a list of scopes`);
    const problem = identityProblem({ principal, tenant, scopes });
    if (problem) {
      const claim = { principal: s.principalClaim, tenant: s.tenantClaim, scopes: s.scopesClaim }[problem.field];
      throw new UnauthenticatedError(`the token's "${claim}" claim is not accepted: the ${problem.field} ${problem.description}`);
    }
    return { principal, tenant, scopes, expiresAt: (payload.exp ?? 0) * 1000 };
  }
}

/** What went wrong, in words safe to send back: jose's codes, never the token or key material. */
function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's "${err.claim}" claim is not accepted`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key matches the token';
  if (err instanceof errors.JWKSTimeout) return 'the key set could not be fetched in time';
  return 'the token is not a valid JWT';
}

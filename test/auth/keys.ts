/**
 * Test keys and tokens: a JWKS file in a temp folder with the keys jose
 * generated, and helpers that sign tokens with them (or with a stranger's key).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'shardwrite';
/** JWT settings that accept these keys' tokens, less where the key set comes from. */
export const JWT_SETTINGS = {
  issuer: ISSUER,
  audience: [AUDIENCE],
  algorithms: ['ES256'],
  principalClaim: 'sub',
  tenantClaim: 'tenant',
  scopesClaim: 'scope',
  clockToleranceSeconds: 0,
};

export interface TestKeys {
  /** The JWKS file (public keys only). */
  readonly jwksFile: string;
  /** The AUTH_* settings that trust these keys. */
  readonly env: Record<string, string>;
  /** A token signed by the trusted key; `claims` override the defaults (sub, tenant, scope, iss, aud, exp in 1 h). */
  sign(claims?: JWTPayload & { tenant?: string; scope?: string | string[] }, options?: { key?: 'trusted' | 'stranger'; alg?: string }): Promise<string>;
}

export async function testKeys(): Promise<TestKeys> {
  const trusted = await generateKeyPair('ES256', { extractable: true });
  const stranger = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(trusted.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const dir = mkdtempSync(join(tmpdir(), 'sw-jwks-'));
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  return {
    jwksFile,
    env: { AUTH_JWKS_FILE: jwksFile, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE },
    async sign(claims = {}, options = {}) {
      const key: CryptoKey = options.key === 'stranger' ? stranger.privateKey : trusted.privateKey;
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { sub: 'alice', tenant: 'tenant-a', scope: 'order-header order-lines order-payment read', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600, ...claims };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'ES256', kid: 'k1' }).sign(key);
    },
  };
}

/**
 * Keys from a JWKS URL (AUTH_JWKS_URL), served here over loopback HTTP: a
 * token signed by a published key verifies (the set is fetched once and
 * cached), and a token whose key is not published is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { JwtVerifier } from '../../src/auth/jwt.js';
import { UnauthenticatedError } from '../../src/errors.js';
import { AUDIENCE, ISSUER, JWT_SETTINGS } from './keys.js';
import { expectRejection } from '../support/expect-error.js';

let server: Server;
let url: string;
const published: JWK[] = [];
let fetches = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function keyPair(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
    sign: (sub: string) =>
      new SignJWT({ sub, tenant: 't', scope: 'read' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h').sign(privateKey),
  };
}

describe('JWT keys from a JWKS URL', () => {
  it('verifies a token by a key the URL publishes, fetching the set once, and refuses a token by a key it does not publish', async () => {
    const published1 = await keyPair('k1');
    const unpublished = await keyPair('k2');
    published.push(published1.jwk);
    const verifier = new JwtVerifier({ jwksUrl: url, ...JWT_SETTINGS });
    await expect(verifier.verify(await published1.sign('alice'))).resolves.toMatchObject({ principal: 'alice', tenant: 't', scopes: ['read'] });
    await expect(verifier.verify(await published1.sign('bob'))).resolves.toMatchObject({ principal: 'bob' });
    expect(fetches).toBe(1);
    const refused = verifier.verify(await unpublished.sign('mallory'));
    await expectRejection(refused, UnauthenticatedError);
    await expectRejection(refused, /no key matches the token/);
  });
});

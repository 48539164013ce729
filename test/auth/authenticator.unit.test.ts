import { beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../../src/auth/authenticator.js';
import { JwtVerifier } from '../../src/auth/jwt.js';
import { StaticTokens, tokenEntry } from '../../src/auth/static-tokens.js';
import { UnauthenticatedError } from '../../src/errors.js';
import { JWT_SETTINGS, testKeys, type TestKeys } from './keys.js';
import { expectRejection, expectThrow } from '../support/expect-error.js';

let keys: TestKeys;
let auth: TokenAuthenticator;

const jwtSettings = (jwksFile: string) => ({ jwksFile, ...JWT_SETTINGS });

beforeAll(async () => {
  keys = await testKeys();
  const tokens = StaticTokens.parse(tokenEntry('svc-secret', 'billing', 'tenant-b', ['order-payment', 'read'])).tokens;
  auth = new TokenAuthenticator(tokens, new JwtVerifier(jwtSettings(keys.jwksFile)));
});

/** The UnauthenticatedError `authenticate` fails with (sync or async). */
async function refusal(authorization: string | undefined): Promise<UnauthenticatedError> {
  try {
    await auth.authenticate(authorization);
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthenticatedError);
    return err as UnauthenticatedError;
  }
  throw new Error('expected a refusal');
}

describe('authentication', () => {
  it('maps a valid JWT’s claims to principal, tenant and scopes', async () => {
    const token = await keys.sign({ scope: ['order-lines', 'read'] });
    await expect(auth.authenticate(`Bearer ${token}`)).resolves.toMatchObject({ principal: 'alice', tenant: 'tenant-a', scopes: ['order-lines', 'read'] });
  });

  it('maps the claims the configuration names (AUTH_CLAIM_PRINCIPAL, _TENANT, _SCOPES) instead of the defaults', async () => {
    const mapped = new TokenAuthenticator(undefined, new JwtVerifier({ ...jwtSettings(keys.jwksFile), principalClaim: 'email', tenantClaim: 'org', scopesClaim: 'roles' }));
    const token = await keys.sign({ email: 'ada@example.com', org: 'acme', roles: ['order-header', 'read'], tenant: 'not-this-one', scope: 'not these' });
    await expect(mapped.authenticate(`Bearer ${token}`)).resolves.toMatchObject({ principal: 'ada@example.com', tenant: 'acme', scopes: ['order-header', 'read'] });
    // The principal claim is required: without it the token is refused.
    await expectRejection(mapped.authenticate(`Bearer ${await keys.sign({ org: 'acme' })}`), /"email"/);
  });

  it('verifies a JWT once: the next call with the same token is answered from the cache, synchronously', async () => {
    const token = await keys.sign({ sub: 'cached' });
    const first = await auth.authenticate(`Bearer ${token}`);
    const second = auth.authenticate(`Bearer ${token}`);
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toBe(first);
  });

  it('identifies a static service token stored as its hash', async () => {
    expect(auth.authenticate('Bearer svc-secret')).toMatchObject({ principal: 'billing', tenant: 'tenant-b', scopes: ['order-payment', 'read'] });
  });

  it.each([
    ['no credentials', undefined],
    ['a header that is not Bearer', 'Basic YWxpY2U6cHc='],
    ['an unknown token', 'Bearer not-a-token'],
  ])('refuses %s', async (_, header) => {
    await refusal(header);
  });

  it('refuses a JWT signed by another key', async () => {
    const e = await refusal(`Bearer ${await keys.sign({}, { key: 'stranger' })}`);
    expect(e.message).toMatch(/signature/);
  });

  it('refuses an expired JWT', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await refusal(`Bearer ${await keys.sign({ iat: now - 7200, exp: now - 60 })}`)).message).toMatch(/expired/);
  });

  it('refuses a JWT without exp', async () => {
    expect((await refusal(`Bearer ${await keys.sign({ exp: undefined })}`)).message).toMatch(/"exp"/);
  });

  it('refuses a JWT for another audience', async () => {
    expect((await refusal(`Bearer ${await keys.sign({ aud: 'another-app' })}`)).message).toMatch(/"aud"/);
  });

  it('refuses a JWT from another issuer', async () => {
    expect((await refusal(`Bearer ${await keys.sign({ iss: 'https://evil.test' })}`)).message).toMatch(/"iss"/);
  });

  it('refuses a JWT whose algorithm is not pinned, even with a trusted key', async () => {
    const es256Only = new TokenAuthenticator(undefined, new JwtVerifier({ ...jwtSettings(keys.jwksFile), algorithms: ['RS256'] }));
    await expectRejection(es256Only.authenticate(`Bearer ${await keys.sign()}`), /algorithm/);
  });

  it.each([
    ['a principal longer than 256 characters', { sub: 'p'.repeat(257) }, /"sub" claim is not accepted: the principal must be 1\.\.256/],
    ['a principal with a control character', { sub: 'alice\nINFO forged log line' }, /"sub" claim is not accepted/],
    ['a tenant longer than 128 characters', { tenant: 't'.repeat(129) }, /"tenant" claim is not accepted: the tenant must be at most 128/],
    ['a tenant with a control character', { tenant: 'tenant-a\u0000' }, /"tenant" claim is not accepted/],
    ['more than 64 scopes', { scope: Array.from({ length: 65 }, (_, i) => `s${i}`) }, /"scope" claim is not accepted: the scopes must be at most 64/],
    ['a scope with a space in it', { scope: ['read', 'order-header order-lines'] }, /"scope" claim is not accepted/],
  ])('refuses a JWT with %s: what events record is bounded, and the message never quotes it', async (_, claims, message) => {
    const e = await refusal(`Bearer ${await keys.sign(claims)}`);
    expect(e.message).toMatch(message);
    expect(e.message).not.toMatch(/ppppp|ttttt|forged|s63/);
  });

  it('accepts a principal and a tenant at their limits', async () => {
    const token = await keys.sign({ sub: 'p'.repeat(256), tenant: 't'.repeat(128), scope: Array.from({ length: 64 }, (_, i) => `s${i}`) });
    await expect(auth.authenticate(`Bearer ${token}`)).resolves.toMatchObject({ principal: 'p'.repeat(256), tenant: 't'.repeat(128) });
  });

  it('never puts the token in an error message', async () => {
    const tokens = [await keys.sign({}, { key: 'stranger' }), await keys.sign({ aud: 'x' }), 'plain-secret-token', await keys.sign({ exp: 1 })];
    for (const t of tokens) {
      const e = await refusal(`Bearer ${t}`);
      expect(e.message).not.toContain(t);
      expect(e.message).not.toContain(t.slice(0, 16));
    }
  });

  it('forgets a cached identity at its expiry', async () => {
    let now = Date.now();
    const clocked = new TokenAuthenticator(undefined, new JwtVerifier(jwtSettings(keys.jwksFile)), 10, () => now);
    const token = await keys.sign({ exp: Math.floor(now / 1000) + 5 });
    await clocked.authenticate(`Bearer ${token}`);
    now += 6000;
    expectThrow(() => clocked.authenticate(`Bearer ${token}`), /expired/);
  });

  it('bounds the cache', async () => {
    const small = new TokenAuthenticator(undefined, new JwtVerifier(jwtSettings(keys.jwksFile)), 2);
    const tokens = await Promise.all([1, 2, 3].map((i) => keys.sign({ sub: `p${i}` })));
    for (const t of tokens) await small.authenticate(`Bearer ${t}`);
    expect(small.authenticate(`Bearer ${tokens[2]}`)).not.toBeInstanceOf(Promise);
    expect(small.authenticate(`Bearer ${tokens[0]}`)).toBeInstanceOf(Promise);
  });
});

describe('static tokens (AUTH_TOKENS)', () => {
  it('refuses the old plaintext format without quoting the entry', () => {
    const { problems } = StaticTokens.parse('my-plain-secret:svc:*');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/plaintext tokens are no longer accepted/);
    expect(problems[0]).not.toContain('my-plain-secret');
  });

  it('refuses a malformed hash and an entry without scopes', () => {
    expect(StaticTokens.parse('sha256:abc:svc:t:*').problems[0]).toMatch(/64 hex digits/);
    expect(StaticTokens.parse(`sha256:${'a'.repeat(64)}:svc:t:`).problems[0]).toMatch(/no scopes/);
  });

  it('refuses an entry whose principal, tenant or scopes are out of bounds, without quoting them', () => {
    const hash = 'a'.repeat(64);
    expect(StaticTokens.parse(`sha256:${hash}:${'p'.repeat(257)}:t:*`).problems).toEqual(['AUTH_TOKENS entry 1: the principal must be 1..256 characters without control characters']);
    expect(StaticTokens.parse(`sha256:${hash}:svc:${'t'.repeat(129)}:*`).problems).toEqual(['AUTH_TOKENS entry 1: the tenant must be at most 128 characters without control characters']);
    const { tokens, problems } = StaticTokens.parse(`sha256:${hash}:svc:t:read|or\tder`);
    expect(problems).toEqual(['AUTH_TOKENS entry 1: the scopes must be at most 64 scopes of 1..128 characters without spaces or control characters']);
    expect(tokens.size).toBe(0);
  });

  it('reads several entries, an empty tenant included', () => {
    const { tokens, problems } = StaticTokens.parse([tokenEntry('t1', 'a', '', ['*']), tokenEntry('t2', 'b', 'x', ['read'])].join(','));
    expect(problems).toEqual([]);
    expect(tokens.identify('t1')).toEqual({ principal: 'a', tenant: '', scopes: ['*'] });
    expect(tokens.identify('t2')).toEqual({ principal: 'b', tenant: 'x', scopes: ['read'] });
    expect(tokens.identify('t3')).toBeUndefined();
  });
});

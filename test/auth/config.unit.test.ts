import { describe, expect, it } from 'vitest';
import { loadRouterConfig } from '../../router/config.js';
import { loadShardConfig } from '../../shard/config.js';
import { ConfigError } from '../../src/config.js';
import { announceSecurityMode } from '../../src/auth/mode.js';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { pino } from 'pino';

const shardBase = { DATABASE_URL: 'postgres://localhost/db' };
const tls = { TLS_CERT_FILE: '/etc/tls/tls.crt', TLS_KEY_FILE: '/etc/tls/tls.key', TLS_CA_FILE: '/etc/tls/ca.crt' };
const routerBase = { RING_DATABASE_URL: 'postgres://localhost/ring' };

function problems(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('secure by default', () => {
  it.each([
    ['shard', () => loadShardConfig(shardBase)],
    ['router', () => loadRouterConfig(routerBase)],
  ])('a %s without an authentication method refuses to start, naming SHARDWRITE_INSECURE', (_, load) => {
    expect(problems(load)).toMatch(/no authentication method is configured.*SHARDWRITE_INSECURE=true/);
  });

  it.each([
    ['shard', () => loadShardConfig({ ...shardBase, AUTH_TOKENS: tokenEntry('t', 'svc', '', ['*']) })],
    ['router', () => loadRouterConfig({ ...routerBase, AUTH_TOKENS: tokenEntry('t', 'svc', '', ['*']) })],
  ])('a %s with authentication but without TLS refuses to start, naming TLS_* and SHARDWRITE_INSECURE', (_, load) => {
    const message = problems(load);
    expect(message).toMatch(/no transport security is configured: set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE.*SHARDWRITE_INSECURE=true/);
    expect(message).not.toMatch(/no authentication method/);
  });

  it('starts in insecure mode only when chosen explicitly, and then warns', () => {
    const config = loadShardConfig({ ...shardBase, SHARDWRITE_INSECURE: 'true' });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    expect(announceSecurityMode(config.auth, false, logger, 'shard')).toBe('insecure');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, insecure: true });
    expect(lines[0]).toMatch(/INSECURE MODE/);
  });

  it('refuses SHARDWRITE_INSECURE values other than true and false', () => {
    expect(problems(() => loadShardConfig({ ...shardBase, SHARDWRITE_INSECURE: 'yes' }))).toMatch(/SHARDWRITE_INSECURE must be one of/);
  });

  it('starts securely with hashed static tokens or a JWKS, and says nothing', () => {
    const config = loadShardConfig({ ...shardBase, ...tls, AUTH_TOKENS: tokenEntry('t', 'svc', '', ['*']) });
    expect(config.auth.insecure).toBe(false);
    const lines: string[] = [];
    expect(announceSecurityMode(config.auth, true, pino({}, { write: (l: string) => void lines.push(l) }), 'shard')).toBe('secure');
    expect(lines).toEqual([]);
  });

  it('refuses plaintext AUTH_TOKENS without printing the token', () => {
    const message = problems(() => loadRouterConfig({ ...routerBase, AUTH_TOKENS: 'hunter2-secret:svc:*' }));
    expect(message).toMatch(/plaintext tokens are no longer accepted/);
    expect(message).not.toContain('hunter2');
  });

  it('requires issuer and audience with a JWKS, and pins asymmetric algorithms', () => {
    const message = problems(() => loadShardConfig({ ...shardBase, AUTH_JWKS_FILE: '/tmp/jwks.json', AUTH_JWT_ALGORITHMS: 'HS256' }));
    expect(message).toMatch(/AUTH_JWT_ISSUER is required/);
    expect(message).toMatch(/AUTH_JWT_AUDIENCE is required/);
    expect(message).toMatch(/HS256 is not an accepted/);
  });

  it('refuses an AUTH_CLIENT_CERTS identity out of bounds, as any other identity', () => {
    const message = problems(() => loadShardConfig({ ...shardBase, ...tls, AUTH_CLIENT_CERTS: `billing:billing:${'t'.repeat(129)}:read` }));
    expect(message).toMatch(/AUTH_CLIENT_CERTS entry 1: the tenant must be at most 128 characters/);
    expect(loadShardConfig({ ...shardBase, ...tls, AUTH_CLIENT_CERTS: 'billing:billing:tenant-b:read|order-payment' }).auth.clientCerts?.get('billing')).toEqual({
      principal: 'billing',
      tenant: 'tenant-b',
      scopes: ['read', 'order-payment'],
    });
  });

  it('takes a JWKS URL over https, and over plain http only on loopback', () => {
    const jwks = (url: string) => () => loadShardConfig({ ...shardBase, ...tls, AUTH_JWKS_URL: url, AUTH_JWT_ISSUER: 'https://idp.test', AUTH_JWT_AUDIENCE: 'shardwrite' });
    expect(problems(jwks('http://idp.test/jwks'))).toMatch(/AUTH_JWKS_URL must be https:\/\/ \(http:\/\/ only on loopback/);
    for (const url of ['https://idp.test/jwks', 'http://127.0.0.1:8080/jwks', 'http://localhost:8080/jwks', 'http://[::1]:8080/jwks']) expect(jwks(url)().auth.jwt?.jwksUrl).toBe(url);
  });

  it('defaults the JWT settings', () => {
    const config = loadShardConfig({ ...shardBase, ...tls, AUTH_JWKS_URL: 'https://idp.test/jwks', AUTH_JWT_ISSUER: 'https://idp.test', AUTH_JWT_AUDIENCE: 'shardwrite' });
    expect(config.auth.jwt).toMatchObject({ algorithms: ['RS256', 'ES256', 'EdDSA'], principalClaim: 'sub', tenantClaim: 'tenant', scopesClaim: 'scope', audience: ['shardwrite'] });
  });
});

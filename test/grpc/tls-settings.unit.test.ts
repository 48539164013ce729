import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader } from '../../src/config.js';
import { SHARD_TLS_SETTINGS, certificateIdentities, readLinkIdentities, readTlsSettings } from '../../src/grpc/tls.js';
import { loadShardConfig } from '../../shard/config.js';
import { loadRouterConfig } from '../../router/config.js';
import { expectThrow } from '../support/expect-error.js';

const read = (env: Record<string, string>) => {
  const r = new EnvReader(env, SHARD_TLS_SETTINGS);
  const tls = readTlsSettings(r);
  const ids = readLinkIdentities(r);
  r.done();
  return { tls, ids };
};

describe('TLS settings', () => {
  it('are off when none of the three files is set, with the default link identities', () => {
    expect(read({})).toEqual({ tls: undefined, ids: new Set(['router', 'rebalancer']) });
  });

  it('take all three files and the reload interval', () => {
    expect(read({ TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a', TLS_RELOAD_MS: '250', TLS_LINK_IDENTITIES: 'router, ops' })).toEqual({
      tls: { certFile: 'c', keyFile: 'k', caFile: 'a', reloadMs: 250 },
      ids: new Set(['router', 'ops']),
    });
  });

  it('refuse a partial set at start-up, naming what is missing', () => {
    expectThrow(() => read({ TLS_CERT_FILE: 'c' }), /must be set together \(missing: TLS_KEY_FILE, TLS_CA_FILE\)/);
    expectThrow(() => loadShardConfig({ DATABASE_URL: 'postgres://x/y', TLS_CA_FILE: 'a' }), ConfigError);
    expectThrow(() => loadRouterConfig({ RING_DATABASE_URL: 'postgres://x/y', TLS_KEY_FILE: 'k', TLS_CERT_FILE: 'c' }), /TLS_CA_FILE/);
  });

  it('reach the router and shard configs', () => {
    const files = { TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a' };
    const insecure = { SHARDWRITE_INSECURE: 'true' };
    expect(loadShardConfig({ DATABASE_URL: 'postgres://x/y', ...files, ...insecure }).tls?.certFile).toBe('c');
    expect(loadRouterConfig({ RING_DATABASE_URL: 'postgres://x/y', ...files, ...insecure }).tls?.caFile).toBe('a');
  });
});

describe('certificate identities', () => {
  it('are the DNS and URI alternative names and the common name, never IP addresses', () => {
    expect(certificateIdentities({ subject: { CN: 'router' }, subjectaltname: 'DNS:router, DNS:localhost, IP Address:127.0.0.1, URI:spiffe://sw/router' })).toEqual([
      'router',
      'localhost',
      'spiffe://sw/router',
      'router',
    ]);
    expect(certificateIdentities({ subject: {}, subjectaltname: undefined })).toEqual([]);
  });
});

describe('REDIS_SNAPSHOT_KEY', () => {
  const base = { DATABASE_URL: 'postgres://x/y', REDIS_URL: 'rediss://shard:secret@redis:6379' };
  // Secure mode: TLS and a (hashed) static token.
  const secure = { TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a', AUTH_TOKENS: `sha256:${'ab'.repeat(32)}:svc::*` };

  it('is required with REDIS_URL unless insecure mode, and must be at least 32 bytes', () => {
    expectThrow(() => loadShardConfig({ ...base, ...secure }), /REDIS_SNAPSHOT_KEY is required/);
    expectThrow(() => loadShardConfig({ ...base, ...secure, REDIS_SNAPSHOT_KEY: 'short' }), /at least 32 bytes/);
    const c = loadShardConfig({ ...base, ...secure, REDIS_SNAPSHOT_KEY: 'k'.repeat(32) });
    expect(c).toMatchObject({ redisSnapshotKey: 'k'.repeat(32), redisSnapshotKeyIsDev: false });
  });

  it('falls back to the public development key in insecure mode, saying so', () => {
    expect(loadShardConfig({ ...base, SHARDWRITE_INSECURE: 'true' })).toMatchObject({ redisSnapshotKeyIsDev: true });
  });
});

describe('REDIS_CA_FILE', () => {
  const secure = { DATABASE_URL: 'postgres://x/y', TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a', AUTH_TOKENS: `sha256:${'ab'.repeat(32)}:svc::*`, REDIS_SNAPSHOT_KEY: 'k'.repeat(32) };

  it('names the CA a rediss:// server must chain to; unset, the default trust store', () => {
    expect(loadShardConfig({ ...secure, REDIS_URL: 'rediss://shard:secret@redis:6379', REDIS_CA_FILE: '/etc/redis-tls/ca.crt' }).redisCaFile).toBe('/etc/redis-tls/ca.crt');
    expect(loadShardConfig({ ...secure, REDIS_URL: 'rediss://shard:secret@redis:6379' }).redisCaFile).toBeUndefined();
  });

  it('is refused without a rediss:// REDIS_URL, where it would silently trust nothing', () => {
    expectThrow(() => loadShardConfig({ ...secure, REDIS_URL: 'redis://redis:6379', REDIS_CA_FILE: '/etc/redis-tls/ca.crt' }), /REDIS_CA_FILE needs a rediss:\/\/ REDIS_URL/);
    expectThrow(() => loadShardConfig({ ...secure, REDIS_CA_FILE: '/etc/redis-tls/ca.crt' }), /REDIS_CA_FILE needs a rediss:\/\/ REDIS_URL/);
  });
});

describe('URL settings that do not parse', () => {
  it('are reported as problems without the URL (and its password) in the message', () => {
    const base = { DATABASE_URL: 'postgres://x/y', SHARDWRITE_INSECURE: 'true' };
    for (const env of [
      { ...base, REDIS_URL: 'rediss://shard:hunter2-secret@[bad', REDIS_CA_FILE: '/ca.crt' },
      { ...base, AUTH_JWKS_URL: 'http://user:hunter2-secret@[bad/jwks', AUTH_JWT_ISSUER: 'i', AUTH_JWT_AUDIENCE: 'a' },
    ]) {
      let message = '';
      try {
        loadShardConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/is not a valid URL/);
      expect(message).not.toContain('hunter2');
    }
  });
});

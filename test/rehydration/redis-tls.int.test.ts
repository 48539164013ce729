/**
 * The snapshot cache over TLS, against a real TLS-only redis-server started
 * here (a certificate from a test CA, an ACL user, the default user off):
 * `rediss://` with ACL credentials and REDIS_CA_FILE's CA works; a server the
 * CA does not vouch for, plaintext at the TLS port, or a wrong password leave
 * the cache unready, so loads fall through to PostgreSQL, and the password is
 * never logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RedisSnapshotCache } from '../../src/cache/redis-snapshot-cache.js';
import { ensureDevCertificates, type CertFiles } from '../../scripts/dev-certificates.js';
import { REDIS_SERVER_AVAILABLE, startTlsRedis, type TlsBackend } from '../support/tls-backends.js';

if (!REDIS_SERVER_AVAILABLE) console.log('[rehydration] redis-server is not on PATH: the Redis TLS tests are skipped');

describe.skipIf(!REDIS_SERVER_AVAILABLE)('Redis snapshot cache over TLS (rediss://)', () => {
  const user = 'shard';
  const password = `pw-${randomBytes(12).toString('hex')}`;
  let dir: string;
  let files: CertFiles;
  let foreign: CertFiles;
  let server: TlsBackend;
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
  const caches: RedisSnapshotCache[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-redis-tls-'));
    files = (await ensureDevCertificates(join(dir, 'cluster'), [{ name: 'redis', ips: ['127.0.0.1'], dns: ['localhost'] }], 'redis test CA')).redis!;
    foreign = (await ensureDevCertificates(join(dir, 'other'), [{ name: 'redis', ips: ['127.0.0.1'], dns: ['localhost'] }], 'another CA')).redis!;
    server = await startTlsRedis(files, user, password, dir);
  }, 30_000);

  afterAll(async () => {
    for (const c of caches) await c.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const url = (scheme: 'redis' | 'rediss', pw = password) => `${scheme}://${user}:${pw}@127.0.0.1:${server.port}`;
  const cacheFor = (options: { url: string; tlsCa?: Buffer }) => {
    const c = new RedisSnapshotCache({ ...options, keyPrefix: 'sw:tls:', timeoutMs: 500, connectTimeoutMs: 1000, logger });
    caches.push(c);
    return c;
  };
  const snapshot = (streamId: string) => ({ streamId, aggregateType: 'tally', version: 3, schemaVersion: 1, position: 7n, state: { total: 3 } });

  it('connects with rediss://, ACL credentials and the CA that signed the server (REDIS_CA_FILE): entries round-trip', async () => {
    const cache = cacheFor({ url: url('rediss'), tlsCa: readFileSync(files.caFile) });
    expect(await cache.waitUntilReady(3000)).toBe(true);
    expect(await cache.put(snapshot('tally-tls-1'))).toBe(true);
    expect(await cache.get('tally-tls-1')).toMatchObject({ version: 3, state: { total: 3 } });
  });

  it.each([
    ['a server its CA does not vouch for', () => ({ url: url('rediss'), tlsCa: readFileSync(foreign.caFile) })],
    ['the default trust store only', () => ({ url: url('rediss') })],
    ['plaintext redis:// at the TLS port', () => ({ url: url('redis') })],
    ['a wrong password', () => ({ url: url('rediss', `${password}-wrong`), tlsCa: readFileSync(files.caFile) })],
  ])('stays unready with %s: every get is a miss, never an error (the loader then reads PostgreSQL)', async (_, options) => {
    const cache = cacheFor(options());
    expect(await cache.waitUntilReady(1500)).toBe(false);
    expect(await cache.get('tally-tls-1')).toBeUndefined();
    expect(lines.join('\n')).not.toContain(password);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader, choice, int, text, type Settings } from '../../src/config.js';
import { SHARD_ENV, SHARD_SETTINGS, loadShardConfig } from '../../shard/config.js';
import { ROUTER_ENV, ROUTER_SETTINGS, loadRouterConfig } from '../../router/config.js';
import { RELAY_ENV, RELAY_SETTINGS } from '../../relay/config.js';
import { PM_WORKER_ENV, PM_WORKER_SETTINGS } from '../../pm-worker/config.js';
import { expectThrow } from '../support/expect-error.js';

const SCHEMAS: Record<string, Settings> = { shard: SHARD_SETTINGS, router: ROUTER_SETTINGS, relay: RELAY_SETTINGS, 'pm-worker': PM_WORKER_SETTINGS };

/** The README's `| \`NAME\` | \`default\` | … |` rows. */
function readmeDefaults(): { name: string; value: string }[] {
  const rows: { name: string; value: string }[] = [];
  for (const line of readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]+)` \| `([^`]*)`( \([^)]*\))? \|/.exec(line);
    if (m) rows.push({ name: m[1]!, value: m[2]! });
  }
  return rows;
}

describe('the settings schemas', () => {
  it('are the env lists the deployment checks use, name for name', () => {
    expect(SHARD_ENV).toEqual(Object.keys(SHARD_SETTINGS));
    expect(ROUTER_ENV).toEqual(Object.keys(ROUTER_SETTINGS));
    expect(RELAY_ENV).toEqual(Object.keys(RELAY_SETTINGS));
    expect(PM_WORKER_ENV).toEqual(Object.keys(PM_WORKER_SETTINGS));
    expect(SHARD_ENV).toEqual(expect.arrayContaining(['DB_POOL_SIZE', 'AUTH_TOKENS', 'RING_POLL_MS', 'TLS_LINK_IDENTITIES', 'HEALTH_ADDRESS', 'PERSONAL_DATA_KEY_TTL_MS']));
    expect(ROUTER_ENV).toEqual(expect.arrayContaining(['SHARD_STALL_MS', 'AUTH_TOKENS', 'CONSUMER_GROUP_LEASE_MS', 'TLS_CA_FILE', 'HEALTH_ADDRESS']));
    expect(ROUTER_ENV).not.toContain('TLS_LINK_IDENTITIES');
  });

  it('give the loaders their defaults: an empty environment loads every default of the schema', () => {
    const shard = loadShardConfig({ DATABASE_URL: 'postgres://h/db', SHARDWRITE_INSECURE: 'true' });
    expect(shard.dbPoolSize).toBe(SHARD_SETTINGS.DB_POOL_SIZE.default);
    expect(shard.redisKeyPrefix).toBe(SHARD_SETTINGS.REDIS_KEY_PREFIX.default);
    expect(shard.metricsAddress).toBe(SHARD_SETTINGS.METRICS_ADDRESS.default);
    expect(shard.shutdownGraceMs).toBe(SHARD_SETTINGS.SHUTDOWN_GRACE_MS.default);
    expect([...shard.linkIdentities].join(',')).toBe(SHARD_SETTINGS.TLS_LINK_IDENTITIES.default);
    const router = loadRouterConfig({ RING_DATABASE_URL: 'postgres://h/ring', SHARDWRITE_INSECURE: 'true' });
    expect(router.breaker.volumeThreshold).toBe(ROUTER_SETTINGS.BREAKER_VOLUME_THRESHOLD.default);
    expect(router.metricsAddress).toBe(ROUTER_SETTINGS.METRICS_ADDRESS.default);
    expect(router.grpcAddress).toBe(ROUTER_SETTINGS.GRPC_ADDRESS.default);
  });

  it('give the loaders their ranges: a value outside one is a problem naming the range', () => {
    expectThrow(() => loadShardConfig({ DATABASE_URL: 'postgres://h/db', SHARDWRITE_INSECURE: 'true', DB_POOL_SIZE: '201' }), /DB_POOL_SIZE must be an integer in 1\.\.200/);
  });

  it("match the README's tables: every default the README names is the schema's", () => {
    const rows = readmeDefaults();
    expect(rows.length).toBeGreaterThan(30);
    const wrong = rows.filter(({ name, value }) => {
      const declared = Object.values(SCHEMAS).flatMap((s) => (Object.hasOwn(s, name) ? [s[name]!] : []));
      return declared.length > 0 && !declared.some((spec) => String(spec.default) === value);
    });
    expect(wrong).toEqual([]);
  });
});

describe('EnvReader', () => {
  const schema = { N: int(7, 1, 10), S: text('x'), C: choice('on', ['on', 'off']), O: int(undefined, 0, 5) } as const;

  it('reads a setting by its name alone, with the default and range of its schema', () => {
    const r = new EnvReader({ N: '3' }, schema);
    expect([r.int('N'), r.string('S'), r.onOff('C'), r.optionalInt('O')]).toEqual([3, 'x', true, undefined]);
    r.done();
  });

  it('collects every problem and throws them together', () => {
    const r = new EnvReader({ N: '11', C: 'maybe', O: '-1' }, schema);
    expect([r.int('N'), r.oneOf('C'), r.optionalInt('O')]).toEqual([7, 'on', undefined]);
    expectThrow(() => r.done(), ConfigError);
    try {
      r.done();
    } catch (err) {
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });

  it('refuses a name its schema does not declare, so no read escapes the env list', () => {
    const loose: Settings = schema;
    const r = new EnvReader({ OTHER: '1' }, loose);
    expectThrow(() => r.optionalString('OTHER'), /not declared/);
    expectThrow(() => r.int('S'), /text setting/);
  });
});

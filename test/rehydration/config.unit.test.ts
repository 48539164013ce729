import { describe, expect, it } from 'vitest';
import { loadShardConfig } from '../../shard/config.js';
import { ConfigError } from '../../src/config.js';
import { parseSnapshotIntervals } from '../../src/pipeline/snapshotter.js';
import { expectThrow } from '../support/expect-error.js';

const base = { DATABASE_URL: 'postgres://localhost/db', SHARDWRITE_INSECURE: 'true' };

describe('snapshot and Redis settings', () => {
  it('default to an interval of 50, no slow-load trigger, a one-hour TTL and a 50 ms Redis timeout', () => {
    const config = loadShardConfig(base);
    expect(config.snapshots).toEqual({ interval: 50, intervals: {}, slowLoadMs: undefined });
    expect(config).toMatchObject({ redisUrl: undefined, redisSnapshotTtlSeconds: 3600, redisTimeoutMs: 50, redisKeyPrefix: 'sw:snap:' });
  });

  it('read per-type intervals and the slow-load trigger', () => {
    const config = loadShardConfig({
      ...base,
      SNAPSHOT_INTERVAL: '100',
      SNAPSHOT_INTERVALS: 'order-lines=20, order-header=200',
      SNAPSHOT_SLOW_LOAD_MS: '25',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_SNAPSHOT_TTL_SECONDS: '60',
    });
    expect(config.snapshots).toEqual({ interval: 100, intervals: { 'order-lines': 20, 'order-header': 200 }, slowLoadMs: 25 });
    expect(config.redisSnapshotTtlSeconds).toBe(60);
  });

  it('list every bad setting at once, including unknown aggregate types', () => {
    const attempt = () => loadShardConfig({ ...base, SNAPSHOT_INTERVAL: '0', SNAPSHOT_INTERVALS: 'order-lines=x,widgets=5', REDIS_TIMEOUT_MS: '-1' });
    expectThrow(attempt, ConfigError);
    try {
      attempt();
    } catch (err) {
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/SNAPSHOT_INTERVAL must be/);
      expect(problems).toMatch(/"order-lines=x"/);
      expect(problems).toMatch(/unknown aggregate type "widgets"/);
      expect(problems).toMatch(/REDIS_TIMEOUT_MS/);
    }
  });

  it('parses interval lists strictly', () => {
    expect(parseSnapshotIntervals('a=1,b=2')).toEqual({ intervals: { a: 1, b: 2 }, problems: [] });
    expect(parseSnapshotIntervals('a=1,a=2').problems).toEqual(['SNAPSHOT_INTERVALS sets "a" twice']);
    expect(parseSnapshotIntervals('a=0').problems).toHaveLength(1);
  });
});

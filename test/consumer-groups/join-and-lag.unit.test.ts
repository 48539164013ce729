import { describe, expect, it } from 'vitest';
import { validateJoin, DEFAULT_MAX_UNACKED, DEFAULT_PARTITIONS } from '../../router/consumer-groups/join.js';
import { eventsBehind } from '../../router/consumer-groups/lag.js';
import { CONSUMER_GROUP_SETTINGS, readConsumerGroupSettings, DEFAULT_CONSUMER_GROUP_SETTINGS } from '../../router/consumer-groups/settings.js';
import { ConfigError, EnvReader } from '../../src/config.js';
import { ValidationError } from '../../src/errors.js';
import { encodeCheckpoint, type ShardPosition } from '../../src/subscriptions/position.js';
import { expectThrow } from '../support/expect-error.js';

const join = (over: object = {}) => ({
  group: 'read-model',
  member: '',
  aggregateTypes: [],
  eventTypes: [],
  startFrom: '',
  maxUnacked: 0,
  partitions: 0,
  ...over,
});

describe('validateJoin', () => {
  it('applies the documented defaults and sorts the filters, so equal filter sets compare equal', () => {
    const spec = validateJoin(join({ aggregateTypes: ['order-lines', 'order-header', 'order-lines'] }));
    expect(spec).toMatchObject({ maxUnacked: DEFAULT_MAX_UNACKED, partitions: DEFAULT_PARTITIONS, startFrom: '' });
    expect(spec.aggregateTypes).toEqual(['order-header', 'order-lines']);
  });

  it('lists every violated rule at once', () => {
    try {
      validateJoin(join({ group: 'bad name!', startFrom: 'yesterday', maxUnacked: 10_001, partitions: 1025, eventTypes: ['ok', ''] }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).violations.map((v) => v.field).sort()).toEqual(['join.event_types', 'join.group', 'join.max_unacked', 'join.partitions', 'join.start_from']);
    }
    expectThrow(() => validateJoin(join({ group: 'x'.repeat(101) })), ValidationError);
  });
});

describe('eventsBehind', () => {
  const tails = new Map([
    ['shard-0', '90:100'],
    ['shard-1', '7:40'],
  ]);
  it('sums tail minus checkpoint positions over the shards', () => {
    const cp = encodeCheckpoint(
      new Map([
        ['shard-0', { tx: 80n, position: 90n }],
        ['shard-1', { tx: 7n, position: 40n }],
      ]),
    );
    expect(eventsBehind(tails, cp)).toBe(10);
    expect(eventsBehind(tails, '')).toBe(140);
  });
  it('counts a shard read to its end as 0, and never goes negative', () => {
    const cp = encodeCheckpoint(
      new Map<string, ShardPosition | 'done'>([
        ['shard-0', 'done'],
        ['shard-1', { tx: 9n, position: 45n }],
      ]),
    );
    expect(eventsBehind(tails, cp)).toBe(0);
  });
});

describe('readConsumerGroupSettings', () => {
  const read = (env: Record<string, string>) => {
    const r = new EnvReader(env, CONSUMER_GROUP_SETTINGS);
    const s = readConsumerGroupSettings(r);
    r.done();
    return s;
  };
  it('defaults to a 10 s lease renewed every second', () => {
    expect(read({})).toEqual(DEFAULT_CONSUMER_GROUP_SETTINGS);
    expect(DEFAULT_CONSUMER_GROUP_SETTINGS.leaseMs).toBe(10_000);
  });
  it('refuses a heartbeat too slow for its lease', () => {
    expectThrow(() => read({ CONSUMER_GROUP_LEASE_MS: '1000', CONSUMER_GROUP_HEARTBEAT_MS: '500' }), ConfigError);
    expect(read({ CONSUMER_GROUP_LEASE_MS: '1500', CONSUMER_GROUP_HEARTBEAT_MS: '500' }).leaseMs).toBe(1500);
  });
});

/**
 * A shard's rehydration stack without gRPC (pipeline, loader, owner cache,
 * snapshots, Redis) over a real database, plus a small test aggregate whose
 * commands append several events at once.
 */
import pg from 'pg';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry, type Counter } from 'prom-client';
import type { Command, Decider, DomainEvent } from '../../src/domain/decider.js';
import type { CommandSpec } from '../../src/domain/module.js';
import { orderLines } from '../../src/domain/orders/index.js';
import { BusinessRuleError } from '../../src/errors.js';
import type { Logger } from '../../src/observability/logger.js';
import { PipelineMetrics } from '../../src/observability/metrics.js';
import { ALLOW_ALL } from '../../src/auth/authorize.js';
import { AggregateLoader } from '../../src/pipeline/loader.js';
import { AggregateCache, type AggregateCacheOptions } from '../../src/pipeline/aggregate-cache.js';
import { SOLE_OWNER } from '../../src/pipeline/ownership.js';
import { CommandPipeline } from '../../src/pipeline/pipeline.js';
import { Snapshotter, type SnapshotPolicy } from '../../src/pipeline/snapshotter.js';
import { RedisSnapshotCache, type RedisSnapshotCacheOptions } from '../../src/cache/redis-snapshot-cache.js';
import { GroupCommitWriter, PgEventReader, migrate } from '../../src/store/index.js';
import { PgSnapshotStore } from '../../src/store/pg-snapshot-store.js';
import type { Appender } from '../../src/store/types.js';

/** `REDIS_URL`, or undefined (then Redis tests skip and say so). */
export const REDIS_URL = process.env.REDIS_URL || undefined;

/** A key prefix no other test (or earlier run) uses, so tests can share one Redis. */
export function uniquePrefix(): string {
  return `sw:test:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` (this test's "FLUSHALL", leaving other tests' keys alone). */
export async function flushPrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url);
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

// --- the test aggregate -------------------------------------------------------

export type Add = Command<'Add', { readonly count: number; readonly fail?: boolean }>;
export type Counted = DomainEvent<'Counted', { readonly n: number }>;
export interface TallyState {
  readonly total: number;
}

/**
 * `tally`: `Add { count }` appends `count` events at once, which is what
 * makes a version jump over a multiple of the snapshot interval.
 */
export const tally: Decider<Add, Counted, TallyState> = {
  aggregateType: 'tally',
  stateSchemaVersion: 1,
  eventSchemaVersions: {},
  upcasters: {},
  initialState: () => ({ total: 0 }),
  decide(command, state) {
    if (command.data.fail) throw new BusinessRuleError('refused');
    return Array.from({ length: command.data.count }, (_, i) => ({ type: 'Counted', data: { n: state.total + i + 1 } }));
  },
  evolve: (state, event) => ({ total: state.total + (event.type === 'Counted' ? 1 : 0) }),
};

/** The same aggregate type with a changed state shape (`stateSchemaVersion` 2), as a new release would ship it. */
export const tallyV2: Decider<Add, Counted, { readonly count: number; readonly last: number }> = {
  ...(tally as unknown as Decider<Add, Counted, { readonly count: number; readonly last: number }>),
  stateSchemaVersion: 2,
  initialState: () => ({ count: 0, last: 0 }),
  decide: (command, state) => Array.from({ length: command.data.count }, (_, i) => ({ type: 'Counted' as const, data: { n: state.count + i + 1 } })),
  evolve: (state, event) => ({ count: state.count + 1, last: event.data.n }),
};

/** `{ id, count, commandId?, expectedVersion?, fail? }` → Add on `tally-<id>`. */
export const ADD: CommandSpec = {
  method: 'Add',
  aggregateType: 'tally',
  toCommand: (request) => {
    const r = request as { id: string; count: number; commandId?: string; expectedVersion?: number; fail?: boolean };
    return {
      aggregateType: 'tally',
      aggregateId: r.id,
      commandId: r.commandId,
      expectedVersion: r.expectedVersion,
      command: { type: 'Add', data: { count: r.count, fail: r.fail } },
    };
  },
};

// --- the stack -----------------------------------------------------------------

export interface StackOptions {
  readonly url: string;
  readonly redis?: Partial<RedisSnapshotCacheOptions> & { url: string };
  readonly policy?: Partial<SnapshotPolicy>;
  readonly ownerCache?: AggregateCacheOptions;
  /** Wraps the real appender (fault injection). */
  readonly appender?: (real: Appender) => Appender;
}

export interface Stack {
  readonly pipeline: CommandPipeline;
  readonly loader: AggregateLoader;
  readonly ownerCache: AggregateCache;
  readonly snapshotter: Snapshotter;
  readonly snapshots: PgSnapshotStore;
  readonly redis: RedisSnapshotCache | undefined;
  readonly reader: PgEventReader;
  readonly metrics: PipelineMetrics;
  readonly pool: pg.Pool;
  /** Warn-level log lines, parsed. */
  readonly logs: { msg: string; [k: string]: unknown }[];
  /** A loader over the same tiers with an empty owner cache (a cold load). */
  coldLoader(): AggregateLoader;
  close(): Promise<void>;
}

/** Builds the stack the way `shard/shard.ts` does, with `tally` and `order-lines`. */
export async function buildStack(options: StackOptions): Promise<Stack> {
  await migrate(options.url);
  const pool = new pg.Pool({ connectionString: options.url, max: 6 });
  pool.on('error', () => {});
  const logs: Stack['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Stack['logs'][number]);
      done();
    },
  });
  const logger: Logger = pino({ level: 'warn' }, sink);
  const metrics = new PipelineMetrics(new Registry());
  const reader = new PgEventReader(pool);
  const writer = new GroupCommitWriter({ connectionString: options.url, epoch: () => 0 });
  const appender = options.appender ? options.appender(writer) : writer;
  const ownerCache = new AggregateCache(options.ownerCache);
  const snapshots = new PgSnapshotStore(pool);
  const redis = options.redis ? new RedisSnapshotCache({ metrics, logger, ...options.redis }) : undefined;
  if (redis) await redis.waitUntilReady(2000);
  const snapshotter = new Snapshotter({ store: snapshots, cache: redis, ownerCache, metrics, logger }, { policy: { interval: 50, intervals: {}, slowLoadMs: undefined, ...options.policy } });
  const tiers = { snapshots, snapshotCache: redis, snapshotter, logger };
  const loader = new AggregateLoader(reader, ownerCache, metrics, tiers);
  const deciders = new Map<string, Decider<never, never, never>>([
    [tally.aggregateType, tally as never],
    [orderLines.aggregateType, orderLines as never],
  ]);
  const pipeline = new CommandPipeline({
    deciders,
    reader,
    appender,
    loader,
    authorizer: ALLOW_ALL,
    ownership: SOLE_OWNER,
    metrics,
    logger,
    afterAppend: (streamId, decider, version, state) => snapshotter.afterAppend(streamId, decider, version, state),
  });
  return {
    pipeline,
    loader,
    ownerCache,
    snapshotter,
    snapshots,
    redis,
    reader,
    metrics,
    pool,
    logs,
    coldLoader: () => new AggregateLoader(reader, new AggregateCache(), metrics, tiers),
    async close() {
      await pipeline.drain();
      await snapshotter.close();
      await writer.close();
      await redis?.close();
      await pool.end();
    },
  };
}

/** The current value of a counter (or a labelled child of it). */
export async function count(metric: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)).reduce((sum, v) => sum + v.value, 0);
}

/** Reads one sample of a shard's `/metrics` (summing every series that has `labels`). */
export async function scrape(metricsAddress: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

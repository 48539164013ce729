/**
 * Rehydrates aggregates, cheapest tier first: the owner cache (no I/O), then
 * a Redis snapshot, then one PostgreSQL round trip that returns a newer
 * PostgreSQL snapshot (if any) and the events after the best of the two,
 * upcast to the current schema. A snapshot of another state schema, or a
 * cached one that is not of this stream's history, is skipped and counted
 * (invariant I8). Snapshot tiers plug in here, never in the pipeline.
 */
import type { AnyDecider } from '../domain/decider.js';
import { upcast } from '../domain/upcast.js';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { EventReader, SnapshotCache, SnapshotStore, StoredEvent, StoredSnapshot } from '../store/types.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import { MAX_TRACKED_COMMAND_IDS, type CachedAggregate, type CommandVersions, type AggregateCache } from './aggregate-cache.js';
import type { Snapshotter } from './snapshotter.js';
import { GroupLookup } from './group-lookup.js';

/**
 * The tier that served a load: `memory` (owner cache), `redis` (a Redis
 * snapshot plus the events after it), `snapshot` (a PostgreSQL snapshot plus
 * the events after it), `replay` (every event of the stream), `assumed_new`
 * (not read at all: see `assumeNew`).
 */
export type LoadTier = 'memory' | 'redis' | 'snapshot' | 'replay' | 'assumed_new';

export interface LoadedAggregate extends CachedAggregate {
  readonly tier: LoadTier;
  /** Events applied on top of the tier's starting point. */
  readonly replayed: number;
}

/** The snapshot tiers of an `AggregateLoader`; without `snapshots` every cold load is a full replay. */
export interface AggregateLoaderOptions {
  readonly snapshots?: SnapshotStore;
  /** Read before PostgreSQL; requires `snapshots`. */
  readonly snapshotCache?: SnapshotCache;
  /** Told about every load that was not served from memory (snapshot policy, cache fill). */
  readonly snapshotter?: Snapshotter;
  readonly logger?: Logger;
}

interface Start {
  readonly tier: Exclude<LoadTier, 'memory'>;
  readonly state: unknown;
  readonly version: number;
}

export class AggregateLoader {
  /** Batched "does this stream exist?" for cold loads: a new stream needs no further read. */
  private readonly versions: GroupLookup<string, number> | undefined;

  constructor(
    private readonly reader: EventReader,
    private readonly cache: AggregateCache,
    private readonly metrics?: PipelineMetrics,
    private readonly options: AggregateLoaderOptions = {},
  ) {
    const streamVersions = reader.streamVersions?.bind(reader);
    this.versions = streamVersions && new GroupLookup((ids: string[]) => streamVersions(ids));
  }

  /**
   * The stream's current state and version. `commandIds` is complete only
   * after a full replay (or from memory); otherwise `undefined`.
   *
   * @throws StoreUnavailableError when PostgreSQL cannot be read (Redis
   *   failures never surface); Error for a stream that cannot be decoded
   *   (a gap, an event schema with no upcaster).
   */
  async load(streamId: string, decider: AnyDecider): Promise<LoadedAggregate> {
    const cached = this.cache.get(streamId);
    if (cached) {
      this.metrics?.loads.inc({ tier: 'memory' });
      return { ...cached, tier: 'memory', replayed: 0 };
    }
    const started = performance.now();
    const { start, events, fromStore } = await this.readTiers(streamId, decider);
    const commandIds = start.version === 0 ? new Map<string, CommandVersions>() : undefined;
    const loaded = replay(decider, start.state, start.version, commandIds, events);
    const value: LoadedAggregate = { ...loaded, snapshotVersion: start.version, tier: start.tier, replayed: events.length };
    this.cache.set(streamId, value);

    const elapsedMs = performance.now() - started;
    const m = this.metrics;
    m?.loads.inc({ tier: start.tier });
    m?.loadSeconds.observe({ tier: start.tier }, elapsedMs / 1000);
    m?.replayedEvents.observe(events.length);
    m?.eventsSinceSnapshot.observe({ aggregate_type: decider.aggregateType }, events.length);
    const snapshotter = this.options.snapshotter;
    if (snapshotter) {
      if (fromStore) snapshotter.fillCache(fromStore);
      snapshotter.afterLoad(streamId, decider, { version: value.version, state: value.state, replayed: events.length, elapsedMs });
    }
    return value;
  }

  /**
   * A stream not in memory, assumed not to exist yet (its initial state at
   * version 0, no command ids), without reading anything; undefined when the
   * stream is in memory. Only for a first decision the append then checks:
   * appending at expected version 0 fails with a conflict if the stream exists.
   */
  assumeNew(streamId: string, decider: AnyDecider): LoadedAggregate | undefined {
    if (this.cache.peek(streamId)) return undefined;
    this.metrics?.loads.inc({ tier: 'assumed_new' });
    return { state: decider.initialState(), version: 0, commandIds: new Map(), snapshotVersion: 0, tier: 'assumed_new', replayed: 0 };
  }

  /**
   * The stream's state after a successful append by this process. Its
   * snapshot record is the newer of the one it was decided on and the cached
   * entry's (a snapshot written meanwhile).
   */
  remember(streamId: string, value: CachedAggregate): void {
    const snapshotVersion = Math.max(value.snapshotVersion ?? -1, this.cache.peek(streamId)?.snapshotVersion ?? -1);
    this.cache.set(streamId, snapshotVersion < 0 ? value : { ...value, snapshotVersion });
  }

  /** Forgets the stream: its stored state is uncertain or owned elsewhere. */
  forget(streamId: string): void {
    this.cache.delete(streamId);
  }

  /**
   * Picks the starting point and reads the events after it. `fromStore` is
   * the PostgreSQL snapshot used when the Redis tier did not have it (for
   * the snapshotter to copy it there).
   */
  private async readTiers(streamId: string, decider: AnyDecider): Promise<{ start: Start; events: StoredEvent[]; fromStore?: StoredSnapshot }> {
    const initial: Start = { tier: 'replay', state: decider.initialState(), version: 0 };
    // Many cold loads are of streams that do not exist yet (a new order): one
    // batched query answers all of those at once, with nothing to replay.
    if (this.versions && (await this.versions.get(streamId)) === undefined) return { start: initial, events: [] };
    const { snapshots, snapshotCache } = this.options;
    if (!snapshots) return { start: initial, events: await this.reader.readStream(streamId, 1) };

    const schemaVersion = decider.stateSchemaVersion;
    let fromCache = snapshotCache ? await snapshotCache.get(streamId) : undefined;
    if (fromCache && fromCache.aggregateType !== decider.aggregateType) {
      this.skipped('redis', 'foreign');
      fromCache = undefined;
    } else if (fromCache && fromCache.schemaVersion !== schemaVersion) {
      this.skipped('redis', 'schema');
      fromCache = undefined;
    }

    let read;
    try {
      read = await snapshots.load(streamId, {
        schemaVersion,
        cached: fromCache && { version: fromCache.version, position: fromCache.position },
      });
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      // The events are the truth and the snapshot table only a cache: read them alone.
      this.skipped('postgres', 'error');
      this.options.logger?.warn({ err, streamId }, 'reading snapshots failed; replaying the stream');
      return { start: initial, events: await this.reader.readStream(streamId, 1) };
    }

    if (fromCache && !read.cachedAccepted) {
      this.skipped('redis', 'foreign');
      fromCache = undefined;
    }
    const stored = read.snapshot;
    if (stored && stored.schemaVersion === schemaVersion) {
      // Newer than anything Redis had: a stale Redis entry never wins.
      if (fromCache) this.skipped('redis', 'stale');
      const start: Start = { tier: 'snapshot', state: stored.state, version: stored.version };
      return { start, events: read.events, fromStore: snapshotCache ? { ...stored, aggregateType: decider.aggregateType } : undefined };
    }
    if (stored) this.skipped('postgres', 'schema');
    if (fromCache) return { start: { tier: 'redis', state: fromCache.state, version: fromCache.version }, events: read.events };
    return { start: initial, events: read.events };
  }

  private skipped(tier: 'redis' | 'postgres', reason: 'schema' | 'foreign' | 'stale' | 'error'): void {
    this.metrics?.snapshotsSkipped.inc({ tier, reason });
  }

  /** Upcasts stored events for readers (ReadStream, duplicate results). */
  upcastEvent(decider: AnyDecider, event: StoredEvent): StoredEvent {
    const current = decider.eventSchemaVersions[event.type] ?? 1;
    if (event.schemaVersion === current) return event;
    return { ...event, data: upcast(decider, event.type, event.schemaVersion, event.data), schemaVersion: current };
  }
}

/**
 * Applies `events` to `state`. When `commandIds` is a map it is extended with
 * the events' command ids, so a full replay knows every id on the stream.
 */
export function replay(decider: AnyDecider, state: unknown, version: number, commandIds: Map<string, CommandVersions> | undefined, events: readonly StoredEvent[]): CachedAggregate {
  let s = state;
  let v = version;
  let ids = commandIds;
  for (const event of events) {
    if (event.version !== v + 1) throw new Error(`stream ${event.streamId} has a gap at version ${v + 1}`);
    const data = upcast(decider, event.type, event.schemaVersion, event.data);
    s = decider.evolve(s, { type: event.type, data });
    v = event.version;
    const commandId = event.metadata.command_id;
    if (ids && commandId) {
      const seen = ids.get(commandId);
      const digest = event.metadata.request_digest;
      ids.set(commandId, { firstVersion: seen?.firstVersion ?? v, lastVersion: v, ...(digest ? { requestDigest: digest } : {}) });
      if (ids.size > MAX_TRACKED_COMMAND_IDS) ids = undefined;
    }
  }
  return { state: s, version: v, commandIds: ids };
}

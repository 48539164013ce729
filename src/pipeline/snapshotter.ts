/**
 * Takes snapshots when they are due, after the reply and off the command's
 * critical path. The policy is "events since the last snapshot ≥ interval"
 * (per aggregate type), never `version % interval`, which a command
 * appending several events would jump over; optionally also "this load
 * took longer than N ms". A snapshot write that fails is logged and counted,
 * never surfaced: snapshots are only caches (invariant I8).
 */
import type { AnyDecider } from '../domain/decider.js';
import type { Logger } from '../observability/logger.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import type { Snapshot, SnapshotCache, SnapshotStore, StoredSnapshot } from '../store/types.js';
import type { AggregateCache } from './aggregate-cache.js';

/** When a snapshot is due. */
export interface SnapshotPolicy {
  /** Events since the last snapshot that make the next one due; default 50. */
  readonly interval: number;
  /** Per-aggregate-type intervals that override `interval`, e.g. `{ 'order-lines': 20 }`. */
  readonly intervals: Readonly<Record<string, number>>;
  /** A load (from any tier but memory) that took at least this long makes a snapshot due; unset = off. */
  readonly slowLoadMs: number | undefined;
}

/** The defaults of `SnapshotPolicy`. */
export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = { interval: 50, intervals: {}, slowLoadMs: undefined };

/** Options of the `Snapshotter`'s write queue. */
export interface SnapshotterOptions {
  readonly policy: SnapshotPolicy;
  /** Snapshot writes run at most this many at a time (each one stream); default 2. */
  readonly concurrency: number;
  /** Streams waiting for a write before new ones are dropped (and counted); default 1000. */
  readonly maxPending: number;
}

/** The defaults of `SnapshotterOptions`. */
export const DEFAULT_SNAPSHOTTER_OPTIONS: SnapshotterOptions = {
  policy: DEFAULT_SNAPSHOT_POLICY,
  concurrency: 2,
  maxPending: 1000,
};

export interface SnapshotterDeps {
  readonly store: SnapshotStore;
  /** Written through after each stored snapshot, and filled from PostgreSQL on a miss; optional. */
  readonly cache?: SnapshotCache;
  /** Where the version of each cached stream's last snapshot is kept. */
  readonly ownerCache: AggregateCache;
  readonly metrics?: PipelineMetrics;
  readonly logger: Logger;
}

/** What a load tells the snapshotter (see `AggregateLoader`). */
export interface LoadReport {
  readonly version: number;
  readonly state: unknown;
  /** Events applied on top of the starting snapshot (or all of them). */
  readonly replayed: number;
  readonly elapsedMs: number;
}

/** One queued write: to PostgreSQL then Redis (`save`), or to Redis only (`cache`). */
type Job = { readonly kind: 'save'; readonly snapshot: Snapshot } | { readonly kind: 'cache'; readonly snapshot: StoredSnapshot };

/**
 * Decides when snapshots are due and writes them in the background: at most
 * one write per stream at a time (a newer request for a stream waiting its
 * turn replaces the older one), `concurrency` writes overall, a bounded
 * queue. Nothing it does can fail or delay a command.
 */
export class Snapshotter {
  private readonly options: SnapshotterOptions;
  private readonly pending = new Map<string, Job>();
  private readonly running = new Set<string>();
  private pumpScheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly deps: SnapshotterDeps,
    options: Partial<SnapshotterOptions> = {},
  ) {
    this.options = { ...DEFAULT_SNAPSHOTTER_OPTIONS, ...options };
  }

  /** The interval that applies to `aggregateType`. */
  intervalFor(aggregateType: string): number {
    return this.options.policy.intervals[aggregateType] ?? this.options.policy.interval;
  }

  /**
   * The pipeline's after-append hook: snapshots `state` at `version` when at
   * least the interval of events came after the last snapshot. Counts from
   * the owner cache's record; when the stream is not cached, the next load
   * (which must then happen) applies the policy instead.
   */
  afterAppend(streamId: string, decider: AnyDecider, version: number, state: unknown): void {
    const entry = this.deps.ownerCache.peek(streamId);
    if (!entry || entry.version !== version) return;
    const since = version - (entry.snapshotVersion ?? 0);
    // Unknown (the entry was evicted between load and append): snapshot once, which records it.
    if (entry.snapshotVersion !== undefined && since < this.intervalFor(decider.aggregateType)) return;
    this.schedule(streamId, decider, version, state);
  }

  /**
   * The loader's hook after a load from Redis, PostgreSQL or a full replay:
   * snapshots the loaded state when the load replayed at least the interval
   * (snapshots were missing, or of another schema) or was slow.
   */
  afterLoad(streamId: string, decider: AnyDecider, report: LoadReport): void {
    if (report.version < 1 || report.replayed < 1) return;
    const slow = this.options.policy.slowLoadMs !== undefined && report.elapsedMs >= this.options.policy.slowLoadMs;
    if (report.replayed < this.intervalFor(decider.aggregateType) && !slow) return;
    this.schedule(streamId, decider, report.version, report.state);
  }

  /** Copies a PostgreSQL snapshot into the cache (after a cache miss or a stale entry), in the background. */
  fillCache(snapshot: StoredSnapshot): void {
    if (!this.deps.cache) return;
    this.enqueue(snapshot.streamId, { kind: 'cache', snapshot });
  }

  /** Resolves once nothing is queued or being written. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is queued, stops taking work and waits for the writes in flight (each bounded by the store's timeouts). */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await this.idle();
  }

  private schedule(streamId: string, decider: AnyDecider, version: number, state: unknown): void {
    // Counted from here on, so the appends that follow do not ask again while this one is written.
    this.deps.ownerCache.markSnapshot(streamId, version);
    this.enqueue(streamId, {
      kind: 'save',
      snapshot: { streamId, aggregateType: decider.aggregateType, version, schemaVersion: decider.stateSchemaVersion, state },
    });
  }

  private enqueue(streamId: string, job: Job): void {
    if (this.closed) return;
    const waiting = this.pending.get(streamId);
    if (waiting) {
      // A PostgreSQL write is never downgraded to a cache-only one.
      if (job.snapshot.version > waiting.snapshot.version || (job.snapshot.version === waiting.snapshot.version && job.kind === 'save')) {
        this.pending.set(streamId, job);
      }
    } else if (this.pending.size >= this.options.maxPending) {
      if (job.kind === 'save') this.deps.metrics?.snapshotWrites.inc({ outcome: 'dropped' });
      return;
    } else {
      this.pending.set(streamId, job);
    }
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      // setImmediate: the reply to the command goes out before any snapshot work starts.
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    for (const [streamId, job] of this.pending) {
      if (this.running.size >= this.options.concurrency) break;
      if (this.running.has(streamId)) continue;
      this.pending.delete(streamId);
      this.running.add(streamId);
      void this.write(job).finally(() => {
        this.running.delete(streamId);
        this.pump();
        if (this.pending.size === 0 && this.running.size === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  /** Never rejects. */
  private async write(job: Job): Promise<void> {
    const { store, cache, metrics, logger } = this.deps;
    if (job.kind === 'cache') {
      await cache?.put(job.snapshot);
      return;
    }
    const s = job.snapshot;
    try {
      const result = await store.save(s);
      metrics?.snapshotWrites.inc({ outcome: result.written ? 'written' : 'kept' });
      if (result.written) await cache?.put({ ...s, position: result.position });
    } catch (err) {
      metrics?.snapshotWrites.inc({ outcome: 'failed' });
      logger.warn({ err, streamId: s.streamId, version: s.version }, 'snapshot write failed (the stream stays correct; loads replay more)');
    }
  }
}

/**
 * Parses per-type intervals, `order-lines=20,order-header=100` (whitespace
 * around items allowed). Returns the intervals and a list of problems (bad
 * items, intervals outside 1..1,000,000, duplicate or unknown types when
 * `knownTypes` is given), for the config loader to report together.
 */
export function parseSnapshotIntervals(spec: string, knownTypes?: ReadonlySet<string>): { intervals: Record<string, number>; problems: string[] } {
  const intervals: Record<string, number> = {};
  const problems: string[] = [];
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^([a-z0-9][a-z0-9-]*)=(\d{1,7})$/.exec(item);
    const n = m ? Number(m[2]) : NaN;
    if (!m || n < 1 || n > 1_000_000) {
      problems.push(`SNAPSHOT_INTERVALS item "${item}" must be <aggregate-type>=<1..1000000>`);
      continue;
    }
    const type = m[1]!;
    if (knownTypes && !knownTypes.has(type)) problems.push(`SNAPSHOT_INTERVALS names unknown aggregate type "${type}"`);
    else if (type in intervals) problems.push(`SNAPSHOT_INTERVALS sets "${type}" twice`);
    else intervals[type] = n;
  }
  return { intervals, problems };
}

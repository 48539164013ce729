/**
 * The event store as the pipeline sees it. The PostgreSQL implementation
 * lives beside this file; nothing above `src/store` knows which driver is used
 * (pg errors are translated here into `src/errors.ts` classes).
 */
import type { SpanContext } from '@opentelemetry/api';

/** Metadata recorded with every event (strings only, so it maps to the wire's map<string,string>). */
export type EventMetadata = Readonly<Record<string, string>>;

/** An event about to be appended, already in its current schema. */
export interface NewEvent {
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: EventMetadata;
}

/** An event as stored (not yet upcast: `schemaVersion` is the stored one). */
export interface StoredEvent {
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: EventMetadata;
  /** Shard-local position; commit order (invariant I9). */
  readonly position: bigint;
  readonly recordedAt: Date;
}

/** One command's share of an append entry. */
export interface AppendedCommand {
  /** Idempotency key; recorded so a repeat appends nothing (invariant I4). */
  readonly commandId?: string;
  /** A digest of the command's request, recorded with its id (a reuse for another request is refused). */
  readonly requestDigest?: string;
  /** How many of the entry's events (in order) this command produced; at least 1. */
  readonly eventCount: number;
}

/**
 * One batch entry: the events of one or more commands on one stream, appended
 * all or nothing (invariant I3) right after `baseVersion` (I2, I7).
 */
export interface AppendEntry {
  readonly streamId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The tenant a stream this entry creates belongs to; default ''. Ignored for an existing stream. */
  readonly tenant?: string;
  /**
   * The stream version the decision was based on (what the pipeline loaded;
   * 0 for a new stream): the append happens only if the stream is still
   * there. Not the client's `expected_version` (RoutedCommand.expectedVersion),
   * which the pipeline checks before it decides.
   */
  readonly baseVersion: number;
  readonly events: readonly NewEvent[];
  /** The commands, in order; their `eventCount`s add up to `events.length`. */
  readonly commands: readonly AppendedCommand[];
  /**
   * When traced: the span the batch that writes this entry may be a child of
   * (its first traced command's), and the command spans it serves (the batch
   * span links to each).
   */
  readonly trace?: { readonly parent: SpanContext; readonly links: readonly SpanContext[] };
}

export interface AppendResult {
  readonly streamId: string;
  /** The stream's version after the entry. */
  readonly version: number;
  /** Position of each appended event, in order. */
  readonly positions: readonly bigint[];
  readonly recordedAt: Date;
}

/** Where a command id was applied: the versions of the events it appended. */
export interface CommandRecord {
  readonly streamId: string;
  readonly commandId: string;
  readonly firstVersion: number;
  readonly lastVersion: number;
  /** The digest of the request recorded with it (undefined for results recorded before digests were). */
  readonly requestDigest?: string;
}

/**
 * A rebalance this shard knows is under way (its plan is in the ring
 * database): the epoch its target ring will have, and which aggregates that
 * ring takes away from this shard. The writer tells the store both with every
 * batch, so the store's move fence can refuse exactly the moving streams.
 */
export interface PendingMove {
  readonly epoch: number;
  movesAway(aggregateId: string): boolean;
}

/**
 * Appends entries durably. `append` resolves only after COMMIT with
 * `synchronous_commit = on` (invariant I1), and rejects with:
 * - `ConcurrencyError` when the stream is not at `baseVersion`;
 * - `DuplicateCommandError` when a command id was already recorded on the stream;
 * - `WrongShardError` when the writer's ring epoch is older than the store's fence,
 *   or the stream was moved away from this store at an epoch the writer holds (invariant I6);
 * - `StreamMovingError` when a rebalance sealed the stream here for a move to a
 *   newer epoch than the writer's (retryable: the new owner takes it);
 * - `StoreUnavailableError` when the database cannot be reached.
 * One entry's failure never fails another entry of the same batch (I5).
 */
export interface Appender {
  append(entry: AppendEntry): Promise<AppendResult>;
  /** Stops taking entries, commits what is pending, releases the connection. */
  close(): Promise<void>;
}

/** Reads from the event store (pooled connections, independent of the writer). */
export interface EventReader {
  /** Events of a stream with fromVersion <= version <= toVersion (default: to its end), in version order. */
  readStream(streamId: string, fromVersion?: number, toVersion?: number): Promise<StoredEvent[]>;
  /** Batched lookup of command ids; missing ones are absent from the result. */
  findCommands(keys: readonly { streamId: string; commandId: string }[]): Promise<CommandRecord[]>;
  /**
   * Current versions of many streams in one round trip; a stream that does
   * not exist is absent. Optional: without it every cold load reads the
   * stream on its own.
   */
  streamVersions?(streamIds: readonly string[]): Promise<Map<string, number>>;
  /** The tenant a stream belongs to; undefined when the stream does not exist here. */
  streamTenant(streamId: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/** An aggregate's state at one stream version, as the decider's current state schema shapes it. */
export interface Snapshot {
  readonly streamId: string;
  readonly aggregateType: string;
  /** The stream version the state reflects: events 1..version applied. */
  readonly version: number;
  /** The decider's `stateSchemaVersion` when the state was taken (invariant I8). */
  readonly schemaVersion: number;
  /** Plain JSON. */
  readonly state: unknown;
}

/**
 * A snapshot as a store or cache hands it back. `position` is the store
 * position of the event at `version`: it ties the snapshot to one history of
 * the stream, so a cached copy from another database (a reset shard, the old
 * owner of a moved stream) is never taken for this one.
 */
export interface StoredSnapshot extends Snapshot {
  readonly position: bigint;
}

/** What `SnapshotStore.save` did. */
export interface SnapshotSaveResult {
  /** False when the store already held a snapshot at least as new (it was kept). */
  readonly written: boolean;
  /** Position of the event at the snapshot's version. */
  readonly position: bigint;
}

/** Asks `SnapshotStore.load` for a rehydration starting point. */
export interface SnapshotLoadRequest {
  /** The state schema the caller can decode; snapshots of another schema are reported, never used. */
  readonly schemaVersion: number;
  /**
   * A snapshot the caller already holds (from a cache). It is used as the
   * starting point only when the event at its version has its position; the
   * store's snapshot is returned instead when it is newer.
   */
  readonly cached?: { readonly version: number; readonly position: bigint };
}

/** The answer of `SnapshotStore.load`: everything read in one round trip, from one MVCC snapshot. */
export interface SnapshotLoad {
  /** Whether `request.cached` belongs to this stream's history (false when none was given). */
  readonly cachedAccepted: boolean;
  /**
   * The stored snapshot when it is newer than the accepted cached one
   * (of any schema: `state` is `undefined` when `schemaVersion` differs from
   * the request's, and `events` then start after the cached one or at 1).
   */
  readonly snapshot: StoredSnapshot | undefined;
  /** The stream's events after the best usable starting point, in version order. */
  readonly events: StoredEvent[];
}

/**
 * PostgreSQL-side snapshots, one per stream: only a cache of the events
 * (invariant I8), so deleting any of them changes no outcome.
 */
export interface SnapshotStore {
  /**
   * Upserts the stream's snapshot unless the stored one is newer (a higher
   * version, or the same version in a higher schema). Rejects with
   * `StoreUnavailableError` when the database is unreachable and with `Error`
   * when the stream has no event at `snapshot.version`.
   */
  save(snapshot: Snapshot): Promise<SnapshotSaveResult>;
  /** The best starting point for rehydrating `streamId` and the events after it; see `SnapshotLoad`. */
  load(streamId: string, request: SnapshotLoadRequest): Promise<SnapshotLoad>;
  close(): Promise<void>;
}

/**
 * A fast, lossy copy of the latest snapshots (Redis). It fails open: `get`
 * resolves `undefined` and `put` resolves `false` on any failure, never
 * rejecting, so the cache can only cost latency.
 */
export interface SnapshotCache {
  get(streamId: string): Promise<StoredSnapshot | undefined>;
  /** Stores `snapshot` unless the cache holds a newer one; resolves whether it was written. */
  put(snapshot: StoredSnapshot): Promise<boolean>;
  close(): Promise<void>;
}

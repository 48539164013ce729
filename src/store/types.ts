/**
 * The event store as the pipeline sees it. The PostgreSQL implementation
 * lives beside this file; nothing above `src/store` knows which driver is used
 * (pg errors are translated here into `src/errors.ts` classes).
 */

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
  /** How many of the entry's events (in order) this command produced; at least 1. */
  readonly eventCount: number;
}

/**
 * One batch entry: the events of one or more commands on one stream, appended
 * all or nothing (invariant I3) at exactly `expectedVersion` (I2, I7).
 */
export interface AppendEntry {
  readonly streamId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The stream version the decision was based on; 0 for a new stream. */
  readonly expectedVersion: number;
  readonly events: readonly NewEvent[];
  /** The commands, in order; their `eventCount`s add up to `events.length`. */
  readonly commands: readonly AppendedCommand[];
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
}

/**
 * Appends entries durably. `append` resolves only after COMMIT with
 * `synchronous_commit = on` (invariant I1), and rejects with:
 * - `ConcurrencyError` when the stream is not at `expectedVersion`;
 * - `DuplicateCommandError` when a command id was already recorded on the stream;
 * - `WrongShardError` when the writer's ring epoch is older than the store's fence,
 *   or the stream was moved away from this store (invariant I6);
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
  /** Events of a stream with version >= fromVersion, in version order. */
  readStream(streamId: string, fromVersion?: number): Promise<StoredEvent[]>;
  /** Batched lookup of command ids; missing ones are absent from the result. */
  findCommands(keys: readonly { streamId: string; commandId: string }[]): Promise<CommandRecord[]>;
  close(): Promise<void>;
}

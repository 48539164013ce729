/**
 * The aggregate cache: the owning shard's memory of hot aggregates (the
 * "owner cache" of the metrics and the load tiers). Only the owner appends to a
 * stream (invariant I6), so an entry it wrote after a successful append is
 * exactly what the stream says; anything uncertain (a conflict, an unknown
 * commit outcome, a handoff) deletes the entry instead of guessing.
 */

/** Where a command id landed in the stream. */
export interface CommandVersions {
  readonly firstVersion: number;
  readonly lastVersion: number;
  /** The digest of the request that applied it, when recorded. */
  readonly requestDigest?: string;
}

export interface CachedAggregate {
  readonly version: number;
  readonly state: unknown;
  /**
   * Every command id recorded on the stream, when this process knows all of
   * them (the stream was replayed from version 1, or is new); `undefined`
   * means "ask the store".
   */
  readonly commandIds: ReadonlyMap<string, CommandVersions> | undefined;
  /**
   * The version of the latest snapshot taken (or scheduled) of the stream, 0
   * when it has none; the snapshot policy counts events from here.
   * `undefined` when unknown.
   */
  readonly snapshotVersion?: number;
}

/** Entries an owner cache holds at most. @default 10000 */
export const DEFAULT_OWNER_CACHE_ENTRIES = 10_000;
/** Approximate bytes of state an owner cache holds at most. @default 67108864 (64 MiB) */
export const DEFAULT_OWNER_CACHE_BYTES = 64 * 1024 * 1024;

export interface AggregateCacheOptions {
  /** Default {@link DEFAULT_OWNER_CACHE_ENTRIES}. */
  maxEntries?: number;
  /** Approximate bytes of state held; default {@link DEFAULT_OWNER_CACHE_BYTES}. */
  maxBytes?: number;
}

/** Above this many known command ids an entry stops tracking them (and asks the store). */
export const MAX_TRACKED_COMMAND_IDS = 1000;

interface Slot {
  readonly streamId: string;
  value: CachedAggregate;
  readonly bytes: number;
  /** Neighbours in recency order: `older` towards the next eviction, `newer` towards the last use. */
  older: Slot | undefined;
  newer: Slot | undefined;
}

/**
 * A least-recently-used map bounded by entry count and approximate bytes.
 * Recency is a linked list through the slots, so every operation is O(1):
 * a full cache evicts on every insert, and evicting the oldest entry of a
 * `Map` by iterating it from the start would first walk over the holes its
 * earlier deletions left.
 */
export class AggregateCache {
  private readonly slots = new Map<string, Slot>();
  /** The next to evict, and the most recently used. */
  private oldest: Slot | undefined;
  private newest: Slot | undefined;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;

  constructor(options: AggregateCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_OWNER_CACHE_ENTRIES;
    this.maxBytes = options.maxBytes ?? DEFAULT_OWNER_CACHE_BYTES;
  }

  get(streamId: string): CachedAggregate | undefined {
    const slot = this.slots.get(streamId);
    if (!slot) return undefined;
    this.unlink(slot);
    this.append(slot);
    return slot.value;
  }

  set(streamId: string, value: CachedAggregate): void {
    this.delete(streamId);
    const bytes = estimateBytes(value);
    if (bytes > this.maxBytes || this.maxEntries === 0) return;
    const slot: Slot = { streamId, value, bytes, older: undefined, newer: undefined };
    this.slots.set(streamId, slot);
    this.append(slot);
    this.bytes += bytes;
    while (this.oldest !== undefined && (this.slots.size > this.maxEntries || this.bytes > this.maxBytes)) {
      this.delete(this.oldest.streamId);
    }
  }

  /** The entry without marking it used (for bookkeeping that is not a load). */
  peek(streamId: string): CachedAggregate | undefined {
    return this.slots.get(streamId)?.value;
  }

  /**
   * Records that a snapshot at `version` was taken of the entry's stream, when
   * the entry is at least that new and knows of no newer snapshot. Leaves
   * recency and size alone.
   */
  markSnapshot(streamId: string, version: number): void {
    const slot = this.slots.get(streamId);
    if (!slot || slot.value.version < version || (slot.value.snapshotVersion ?? -1) >= version) return;
    slot.value = { ...slot.value, snapshotVersion: version };
  }

  delete(streamId: string): void {
    const slot = this.slots.get(streamId);
    if (!slot) return;
    this.slots.delete(streamId);
    this.unlink(slot);
    this.bytes -= slot.bytes;
  }

  /** Drops every entry (ownership changed, or the store was reset). */
  clear(): void {
    this.slots.clear();
    this.oldest = this.newest = undefined;
    this.bytes = 0;
  }

  get size(): number {
    return this.slots.size;
  }

  get approximateBytes(): number {
    return this.bytes;
  }

  /** Puts a slot that is in no list at the most recent end. */
  private append(slot: Slot): void {
    slot.older = this.newest;
    slot.newer = undefined;
    if (this.newest) this.newest.newer = slot;
    else this.oldest = slot;
    this.newest = slot;
  }

  private unlink(slot: Slot): void {
    if (slot.older) slot.older.newer = slot.newer;
    else this.oldest = slot.newer;
    if (slot.newer) slot.newer.older = slot.older;
    else this.newest = slot.older;
    slot.older = slot.newer = undefined;
  }
}

function estimateBytes(value: CachedAggregate): number {
  // UTF-16 in memory: about two bytes a character, plus the command-id index.
  const ids = value.commandIds ? value.commandIds.size * 96 : 0;
  return 2 * (JSON.stringify(value.state)?.length ?? 0) + ids + 128;
}

/**
 * An in-memory stand-in for the router's cluster feed, with the same
 * contract: a merged list of events over several shards, each with a
 * per-shard position, read from a checkpoint token, filtered by partition,
 * pulled at the caller's pace, then live.
 */
import type { ClusterFeeds, ClusterItem, ClusterSubscribeOptions, SubscribedEvent } from '../../../router/consumer-groups/feeds.js';
import { ValidationError } from '../../../src/errors.js';
import { partitionOf } from '../../../src/subscriptions/partition.js';
import { decodeCheckpoint, encodeCheckpoint, type ShardPosition } from '../../../src/subscriptions/position.js';

interface Entry {
  readonly shard: string;
  readonly position: bigint;
  readonly streamId: string;
  readonly version: number;
  readonly aggregateType: string;
  readonly type: string;
  readonly recordedAtMs: number;
}

export class FakeFeeds implements ClusterFeeds {
  readonly #entries: Entry[] = [];
  readonly #positions = new Map<string, bigint>();
  readonly #versions = new Map<string, number>();
  #waiters: (() => void)[] = [];
  /** Subscriptions opened so far (each restart counts). */
  subscriptions = 0;
  /** The `authorization` of the latest subscription. */
  lastAuthorization: string | undefined;

  constructor(readonly shards: readonly string[] = ['shard-0', 'shard-1']) {
    for (const s of shards) this.#positions.set(s, 0n);
  }

  /** Commits one event on `streamId` (on the shard its name picks); returns its version. */
  append(streamId: string, type = 'Happened', aggregateType = 'order-header'): number {
    const shard = this.shards[partitionOf(streamId, this.shards.length)]!;
    const position = this.#positions.get(shard)! + 1n;
    this.#positions.set(shard, position);
    const version = (this.#versions.get(streamId) ?? 0) + 1;
    this.#versions.set(streamId, version);
    this.#entries.push({ shard, position, streamId, version, aggregateType, type, recordedAtMs: Date.now() });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
    return version;
  }

  /** Every event committed, as `stream@version`, by stream. */
  committed(): Map<string, number> {
    return new Map(this.#versions);
  }

  async tails(): Promise<Map<string, string>> {
    return new Map([...this.#positions].map(([s, p]) => [s, p === 0n ? '' : `${p}:${p}`]));
  }

  subscribe(options: ClusterSubscribeOptions, signal: AbortSignal): AsyncIterable<ClusterItem> {
    for (const t of options.aggregateTypes) if (t === 'unknown') throw new ValidationError([{ field: 'aggregate_types', description: 'unknown' }]);
    const cursor = new Map<string, ShardPosition | 'done'>();
    if (options.from === 'end') {
      for (const [s, p] of this.#positions) cursor.set(s, { tx: p, position: p });
    } else if (options.from !== '') {
      for (const [s, p] of decodeCheckpoint(options.from)) cursor.set(s, p);
    }
    this.subscriptions++;
    this.lastAuthorization = options.authorization;
    const members = options.partitions && new Set(options.partitions.members);
    const wanted = (e: Entry) =>
      (!members || members.has(partitionOf(e.streamId, options.partitions.count))) &&
      (options.aggregateTypes.length === 0 || options.aggregateTypes.includes(e.aggregateType)) &&
      (options.eventTypes.length === 0 || options.eventTypes.includes(e.type));
    const passed = (e: Entry) => {
      const at = cursor.get(e.shard);
      return at === 'done' || (at !== undefined && e.position <= at.position);
    };
    const entries = this.#entries;
    const wait = () =>
      new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        this.#waiters.push(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    return (async function* (): AsyncGenerator<ClusterItem> {
      let i = 0;
      let skipped = 0;
      while (!signal.aborted) {
        if (i < entries.length) {
          const e = entries[i++]!;
          if (passed(e)) continue;
          cursor.set(e.shard, { tx: e.position, position: e.position });
          if (!wanted(e)) {
            if (++skipped % 50 === 0) yield { kind: 'checkpoint', checkpoint: encodeCheckpoint(cursor) };
            continue;
          }
          yield { kind: 'event', event: toEvent(e, encodeCheckpoint(cursor)) };
          continue;
        }
        if (cursor.size > 0) yield { kind: 'checkpoint', checkpoint: encodeCheckpoint(cursor) };
        yield { kind: 'caught_up' };
        while (i >= entries.length && !signal.aborted) await wait();
      }
    })();
  }
}

function toEvent(e: Entry, checkpoint: string): SubscribedEvent {
  return {
    eventId: `${e.streamId}@${e.version}`,
    aggregateType: e.aggregateType,
    aggregateId: e.streamId.slice(e.streamId.indexOf('-') + 1),
    streamId: e.streamId,
    version: String(e.version),
    type: e.type,
    schemaVersion: 1,
    data: '{}',
    recordedAt: { seconds: String(Math.floor(e.recordedAtMs / 1000)), nanos: (e.recordedAtMs % 1000) * 1e6 },
    metadata: {},
    checkpoint,
    shardId: e.shard,
  };
}

/**
 * A cluster-wide subscription: every shard's feed, merged by the router.
 *
 * Where it stands is a vector of per-shard positions (the checkpoint token).
 * Shards are merged in no particular order — there is no global order across
 * shards — with one rule that keeps each stream in order when a rebalance
 * moves it (I12): a copy of a moved stream's events is a *barrier* in its new
 * shard's feed, and nothing after the barrier is delivered before the feed of
 * the shard that first committed those events has passed them. Events are
 * only ever delivered from the shard that first committed them (copies carry
 * that shard and position), so a move never delivers an event twice, and a
 * shard that left the ring is still read for what it committed.
 */
import * as grpc from '@grpc/grpc-js';
import { feedApi, loadApi } from '../../src/grpc/proto.js';
import { eventResponse } from '../../src/subscriptions/event-codec.js';
import type { FeedItem__Output } from '../../src/generated/shardwrite/internal/v1/FeedItem.js';
import type { ShardFeedClient } from '../../src/generated/shardwrite/internal/v1/ShardFeed.js';
import type { SubscribedEvent__Output } from '../../src/generated/shardwrite/v1/SubscribedEvent.js';
import type { Logger } from '../../src/observability/logger.js';
import type { RingWatcher } from '../../src/ring/index.js';
import { PermissionDeniedError, UnauthenticatedError, ValidationError } from '../../src/errors.js';
import { parseFilter, type FeedFilter } from '../../src/subscriptions/filter.js';
import { checkpointToken, comparePositions, decodeCheckpoint, formatPosition, parsePosition, START, type ShardPosition } from '../../src/subscriptions/position.js';
import { ShardFollower, type FollowStart } from './shard-follower.js';
import { SharedUpstreams } from './shared-upstream.js';

export interface ClusterSubscribeOptions {
  /** "" = the beginning, "end", or a checkpoint token. */
  readonly from: string;
  readonly aggregateTypes: readonly string[];
  readonly eventTypes: readonly string[];
  /** Only streams whose `partitionOf(streamId, count)` is in `members`. */
  readonly partitions?: { readonly count: number; readonly members: readonly number[] };
  /** The caller's `authorization` metadata, passed on to every shard (subscribing needs read permission there). */
  readonly authorization?: string;
}

/**
 * An event as the merge delivers it: the shard's encoding (forwarded as it
 * is), its stream, and the cluster checkpoint right after it. `event`
 * decodes it, for a consumer that needs its fields.
 */
export class ClusterEvent {
  readonly kind = 'event';
  #decoded: SubscribedEvent__Output | undefined;

  constructor(
    /** A SubscribedEvent without its checkpoint (see src/subscriptions/event-codec.ts). */
    readonly encoded: Buffer,
    readonly streamId: string,
    readonly checkpoint: string,
  ) {}

  get event(): SubscribedEvent__Output {
    this.#decoded ??= SUBSCRIBE.responseDeserialize(eventResponse(this.encoded, this.checkpoint)).event!;
    return this.#decoded;
  }
}

const SUBSCRIBE = loadApi().shardwrite.v1.SubscriptionService.service.Subscribe;

export type ClusterItem = ClusterEvent | { readonly kind: 'checkpoint'; readonly checkpoint: string } | { readonly kind: 'caught_up' } | { readonly kind: 'fell_behind' };

export interface ClusterFeedsDeps {
  readonly watcher: RingWatcher;
  /** Addresses of shards that were on the ring once (a shard that left is still read). */
  readonly shardAddresses: () => Promise<Map<string, string>>;
  readonly logger: Logger;
  /** How the router reaches shards (mutual TLS, or plaintext in insecure mode). */
  readonly credentials: grpc.ChannelCredentials;
}

/** Without events, a checkpoint goes out at most this often while positions move. @default 1000 ms */
export const CHECKPOINT_EVERY_MS = 1000;
/** Items taken from one shard before the merge turns to the next. */
const FAIR_SHARE = 256;

export class ClusterFeeds {
  readonly #clients = new Map<string, ShardFeedClient>();
  readonly #service = feedApi().shardwrite.internal.v1.ShardFeed;
  #retired = new Map<string, string>();
  /** Live subscribers with the same shard, filter and credentials read one call (see shared-upstream.ts). */
  readonly upstreams: SharedUpstreams;

  constructor(private readonly deps: ClusterFeedsDeps) {
    this.upstreams = new SharedUpstreams(deps.logger);
  }

  /**
   * Pull-based: the caller's pace is the subscription's pace. Ends when
   * `signal` aborts.
   * @throws ValidationError for a malformed token (before anything is
   *   yielded), or an aggregate type the shards do not know (when they say so).
   */
  subscribe(options: ClusterSubscribeOptions, signal: AbortSignal): AsyncIterable<ClusterItem> {
    return flatten(this.subscribeInBatches(options, signal));
  }

  /** As `subscribe`, in batches: what the merge had ready at once, in order (a sender can batch its messages). */
  subscribeInBatches(options: ClusterSubscribeOptions, signal: AbortSignal): AsyncIterable<ClusterItem[]> {
    const filter = parseFilter(
      {
        aggregateTypes: options.aggregateTypes,
        eventTypes: options.eventTypes,
        partitionCount: options.partitions?.count,
        partitions: options.partitions?.members,
      },
      undefined,
    );
    const cursor = options.from === '' || options.from === 'end' ? new Map<string, ShardPosition | 'done'>() : decodeCheckpoint(options.from);
    return new Merge(this, filter, options.from === 'end', cursor, options.authorization, signal, this.deps).run();
  }

  /** Each ring shard's current tail ("tx:position"), for lag. Shards that do not answer within `ms` are left out. */
  async tails(ms = 2000): Promise<Map<string, string>> {
    const view = this.deps.watcher.view;
    const out = new Map<string, string>();
    await Promise.all(
      (view?.shards ?? []).map(
        (s) =>
          new Promise<void>((resolve) => {
            const call = this.client(s.id)?.follow({ fromEnd: true, aggregateTypes: [], eventTypes: [], partitionCount: 0, partitions: [], after: '' }, { deadline: Date.now() + ms });
            if (!call) return resolve();
            call.on('data', (b: { items: FeedItem__Output[] }) => {
              const start = b.items[0]?.start;
              if (start) out.set(s.id, start.after);
              call.cancel();
            });
            call.on('error', () => resolve());
            call.on('end', () => resolve());
          }),
      ),
    );
    return out;
  }

  /** The feed client of a shard on the ring, or one that left it (undefined while its address is unknown). */
  client(shardId: string): ShardFeedClient | undefined {
    const address = this.deps.watcher.view?.shards.find((s) => s.id === shardId)?.address ?? this.#retired.get(shardId);
    if (address === undefined) return undefined;
    const key = `${shardId}@${address}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = new this.#service(address, this.deps.credentials, {
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  /** Learns the addresses of shards that left the ring. */
  async refreshRetired(): Promise<void> {
    this.#retired = await this.deps.shardAddresses();
  }

  retiredIds(): string[] {
    const onRing = new Set(this.deps.watcher.view?.shards.map((s) => s.id) ?? []);
    return [...this.#retired.keys()].filter((id) => !onRing.has(id));
  }

  close(): void {
    this.upstreams.close();
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

interface ShardState {
  readonly id: string;
  follower: ShardFollower | undefined;
  /** Consumed up to here; undefined until a from-end feed says where it starts. */
  at: ShardPosition | undefined;
  /** `at` as the checkpoint writes it, kept while `at` is that position. */
  atText: { readonly at: ShardPosition; readonly text: string } | undefined;
  /** Read to its end after it left the ring: every barrier on it is passed. */
  done: boolean;
  caughtUp: boolean;
  /** Barriers that come before anything in the feed (from-end start). */
  preBarriers: { origin: string; at: ShardPosition }[];
  /** Left the ring: finished at the first caught-up after `retireAfter` items were queued. */
  retireAfter: number | undefined;
}

class Merge {
  readonly #shards = new Map<string, ShardState>();
  #wakeUp: (() => void) | undefined;
  #dirty = false;
  #sortedIds: string[] = [];

  constructor(
    private readonly feeds: ClusterFeeds,
    private readonly filter: FeedFilter,
    private readonly fromEnd: boolean,
    private readonly initial: Map<string, ShardPosition | 'done'>,
    private readonly authorization: string | undefined,
    private readonly signal: AbortSignal,
    private readonly deps: ClusterFeedsDeps,
  ) {}

  async *run(): AsyncGenerator<ClusterItem[]> {
    const offRing = this.deps.watcher.onChange(() => this.#wake());
    const onAbort = () => this.#wake();
    this.signal.addEventListener('abort', onAbort);
    try {
      await this.feeds.refreshRetired();
      // From the end, shards that left the ring committed nothing after it: passed without reading.
      if (this.fromEnd) for (const id of this.feeds.retiredIds()) this.#shards.set(id, this.#state(id, 'passed'));
      for (const [id, at] of this.initial) this.#shards.set(id, this.#state(id, at === 'done' ? 'passed' : at));
      yield* this.#loop();
    } finally {
      offRing();
      this.signal.removeEventListener('abort', onAbort);
      for (const s of this.#shards.values()) s.follower?.close();
    }
  }

  async *#loop(): AsyncGenerator<ClusterItem[]> {
    let announcedCaughtUp = false;
    let fellBehind = false;
    let lastCheckpointAt = Date.now();
    let started = !this.fromEnd;
    while (!this.signal.aborted) {
      this.#syncWithRing();
      if (!started) {
        started = this.#fromEndStarted();
        if (!started) {
          await this.#sleep(200);
          continue;
        }
        yield [{ kind: 'checkpoint', checkpoint: this.#token() }];
      }
      let progressed = false;
      const out: ClusterItem[] = [];
      for (const s of [...this.#shards.values()]) {
        for (let n = 0; n < FAIR_SHARE && s.follower; n++) {
          const pre = s.preBarriers[0];
          if (pre) {
            if (!this.#passed(pre.origin, pre.at)) break;
            s.preBarriers.shift();
            continue;
          }
          const item = s.follower.peek();
          if (item === undefined) {
            if (s.follower.refused) throw refusal(s.follower.refused);
            break;
          }
          if (item.barrier && !this.#passed(item.barrier.originShard, parsePosition(item.barrier.originPosition))) break;
          s.follower.take();
          progressed = true;
          if (item.event) {
            s.at = parsePosition(item.event.position);
            s.atText = { at: s.at, text: item.event.position };
            this.#dirty = false;
            lastCheckpointAt = Date.now();
            out.push(new ClusterEvent(item.event.event, item.event.streamId, this.#token()));
          } else if (item.progress !== undefined) {
            s.at = parsePosition(item.progress);
            this.#dirty = true;
          } else if (item.caughtUp) {
            s.caughtUp = true;
            if (s.retireAfter !== undefined && s.follower.taken > s.retireAfter) this.#finish(s);
          } else if (item.fellBehind) {
            s.caughtUp = false;
            if (!fellBehind) {
              fellBehind = true;
              announcedCaughtUp = false;
              out.push({ kind: 'fell_behind' });
            }
          }
        }
      }
      if (!announcedCaughtUp && this.#allCaughtUp()) {
        announcedCaughtUp = true;
        fellBehind = false;
        out.push({ kind: 'checkpoint', checkpoint: this.#token() }, { kind: 'caught_up' });
        this.#dirty = false;
        lastCheckpointAt = Date.now();
      }
      if (this.#dirty && Date.now() - lastCheckpointAt >= CHECKPOINT_EVERY_MS) {
        this.#dirty = false;
        lastCheckpointAt = Date.now();
        out.push({ kind: 'checkpoint', checkpoint: this.#token() });
      }
      if (out.length > 0) yield out;
      if (!progressed) await this.#sleep(CHECKPOINT_EVERY_MS);
    }
  }

  /** Whether the feed of `origin` has passed `at` (a shard never read and not on the ring at a from-end start counts as passed). */
  #passed(origin: string, at: ShardPosition): boolean {
    const s = this.#shards.get(origin);
    if (s === undefined) {
      // A shard this subscription has not read yet: read it from its beginning.
      this.#shards.set(origin, this.#state(origin, START));
      return false;
    }
    if (s.done) return true;
    return s.at !== undefined && comparePositions(s.at, at) >= 0;
  }

  #syncWithRing(): void {
    const view = this.deps.watcher.view;
    if (!view) return;
    const onRing = new Set(view.shards.map((s) => s.id));
    for (const id of onRing) {
      const s = this.#shards.get(id);
      // A shard that joins the ring later has nothing this subscription could have passed: read it from its beginning.
      if (s === undefined) this.#shards.set(id, this.#state(id, this.fromEnd && !this.#anyStarted() ? 'end' : START));
      else if (s.done) {
        // Back on the ring after it was finished: follow it again from where it was left.
        s.done = false;
        s.caughtUp = false;
        s.retireAfter = undefined;
        s.follower = this.#follow(id, s.at ? { after: s.at } : { fromEnd: true });
      }
    }
    for (const s of this.#shards.values()) {
      if (!onRing.has(s.id) && !s.done && s.retireAfter === undefined && s.follower) {
        // It left the ring: read it to its end once more, then it is finished.
        s.retireAfter = s.follower.pushed;
        s.caughtUp = false;
        s.follower.restart();
      }
    }
  }

  /** 'end': follow from its tail; 'passed': not read, and passed (it left the ring before a from-end start). */
  #state(id: string, at: ShardPosition | 'end' | 'passed'): ShardState {
    const passed = at === 'passed';
    const state: ShardState = {
      id,
      follower: undefined,
      at: typeof at === 'string' ? undefined : at,
      atText: undefined,
      done: passed,
      caughtUp: passed,
      preBarriers: [],
      retireAfter: undefined,
    };
    if (!passed) state.follower = this.#follow(id, at === 'end' ? { fromEnd: true } : { after: at });
    return state;
  }

  #follow(id: string, start: FollowStart): ShardFollower {
    const client = () => {
      const c = this.feeds.client(id);
      if (!c) void this.feeds.refreshRetired().catch(() => {});
      return c;
    };
    return new ShardFollower(id, client, this.filter, start, this.authorization, () => this.#wake(), this.deps.logger, this.feeds.upstreams);
  }

  #anyStarted(): boolean {
    return [...this.#shards.values()].some((s) => s.at !== undefined && !s.done);
  }

  /** A from-end subscription starts once every shard said where its tail is; copies there newer than their origin's tail become barriers. */
  #fromEndStarted(): boolean {
    const starting = [...this.#shards.values()].filter((s) => !s.done);
    if (starting.length === 0) return false;
    for (const s of starting) {
      if (s.at !== undefined) continue;
      const item = s.follower?.peek();
      if (!item?.start) return false;
    }
    const copied = new Map<string, Record<string, string>>();
    for (const s of starting) {
      if (s.at !== undefined) continue;
      const start = s.follower!.take()!.start!;
      s.at = parsePosition(start.after);
      copied.set(s.id, start.copiedUpTo);
    }
    for (const [id, upTo] of copied) {
      for (const [origin, position] of Object.entries(upTo)) {
        const o = this.#shards.get(origin);
        const at = parsePosition(position);
        if (o && !o.done && o.at !== undefined && comparePositions(at, o.at) > 0) this.#shards.get(id)!.preBarriers.push({ origin, at });
      }
    }
    return true;
  }

  #finish(s: ShardState): void {
    s.done = true;
    s.follower?.close();
    s.follower = undefined;
    this.#dirty = true;
  }

  #allCaughtUp(): boolean {
    const states = [...this.#shards.values()];
    return states.length > 0 && states.every((s) => s.done || (s.caughtUp && s.follower?.peek() === undefined));
  }

  /** Made for every event delivered: shard ids sorted once per change, positions formatted once per move. */
  #token(): string {
    if (this.#sortedIds.length !== this.#shards.size) this.#sortedIds = [...this.#shards.keys()].sort();
    const entries: (readonly [string, string])[] = [];
    for (const id of this.#sortedIds) {
      const s = this.#shards.get(id)!;
      if (s.at !== undefined) {
        if (s.atText?.at !== s.at) s.atText = { at: s.at, text: formatPosition(s.at) };
        entries.push([id, s.atText.text]);
      } else if (s.done) entries.push([id, 'done']);
    }
    return checkpointToken(entries);
  }

  #wake(): void {
    const w = this.#wakeUp;
    this.#wakeUp = undefined;
    w?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeUp = undefined;
        resolve();
      }, ms);
      this.#wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** A shard's refusal of the subscription, as the caller gets it. */
function refusal(err: grpc.ServiceError): Error {
  if (err.code === grpc.status.UNAUTHENTICATED) return new UnauthenticatedError(err.details);
  if (err.code === grpc.status.PERMISSION_DENIED) return new PermissionDeniedError(err.details);
  return new ValidationError([{ field: 'request', description: err.details }]);
}

async function* flatten<T>(batches: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const batch of batches) yield* batch;
}

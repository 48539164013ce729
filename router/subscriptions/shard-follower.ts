/**
 * One shard's feed as a router follows it: a `ShardFeed.Follow` call whose
 * items wait in a bounded queue until the merge takes them. The call is
 * paused while the queue is full (so gRPC flow control slows the shard, and
 * memory stays bounded), and reopened after the last position received when
 * it breaks, so a shard restart costs a reconnect, never an event.
 *
 * Once live, a follower given the router's shared feeds moves from its own
 * call onto the shared one of its shard, filter and caller, at the position
 * it had reached (see shared-upstream.ts), and back to a call of its own
 * when it falls behind the shared feed or is restarted.
 */
import * as grpc from '@grpc/grpc-js';
import type { FeedBatch__Output } from '../../src/generated/shardwrite/internal/v1/FeedBatch.js';
import type { FeedItem__Output } from '../../src/generated/shardwrite/internal/v1/FeedItem.js';
import type { ShardFeedClient } from '../../src/generated/shardwrite/internal/v1/ShardFeed.js';
import type { Logger } from '../../src/observability/logger.js';
import type { FeedFilter } from '../../src/subscriptions/filter.js';
import { formatPosition, parsePosition, type ShardPosition } from '../../src/subscriptions/position.js';
import type { Membership, SharedConsumer, SharedUpstreams } from './shared-upstream.js';

/** Items queued per shard before its call is paused. @default 8192 */
export const FOLLOWER_QUEUE_HIGH = 8192;
/** Longest wait before reopening a broken feed. @default 2000 ms */
const RECONNECT_MAX_MS = 2000;

const REFUSALS = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

export type FollowStart = { readonly after: ShardPosition } | { readonly fromEnd: true };

/** Where an item leaves the feed: an event's position, a progress, or a start (barriers and markers have none). */
export function positionTextOf(item: FeedItem__Output): string | undefined {
  return item.event?.position ?? item.progress ?? item.start?.after;
}

export class ShardFollower {
  #queue: FeedItem__Output[] = [];
  #head = 0;
  #call: grpc.ClientReadableStream<FeedBatch__Output> | undefined;
  #paused = false;
  #closed = false;
  #received: ShardPosition | undefined;
  /** `#received` as the shard wrote it (what a shared feed is joined at). */
  #receivedText: string | undefined;
  /** The own call said it caught up (and has not fallen behind since): time to move onto the shared feed. */
  #live = false;
  /** Its place on a shared feed: joined (it reads only from there) or waiting to. */
  #membership: Membership | undefined;
  #shared = false;
  readonly #consumer: SharedConsumer = {
    deliver: (items) => this.#accept(items),
    refuse: (err) => {
      this.#membership = undefined;
      this.#shared = false;
      this.refused = err;
      this.wake();
    },
    retry: () => {
      if (this.#live && !this.#shared) this.#joinShared();
    },
  };
  #retryMs = 100;
  #timer: NodeJS.Timeout | undefined;
  /** Set when the shard refused the request itself (invalid, or not allowed): reopening would not help. */
  refused: grpc.ServiceError | undefined;
  /** Items queued and taken so far (a caller tells items from before and after a `restart` apart). */
  pushed = 0;
  taken = 0;

  constructor(
    readonly shardId: string,
    private readonly client: () => ShardFeedClient | undefined,
    private readonly filter: FeedFilter,
    private readonly start: FollowStart,
    private readonly authorization: string | undefined,
    private readonly wake: () => void,
    private readonly logger: Logger,
    /** The router's shared feeds; without them the follower keeps its own call. */
    private readonly upstreams?: SharedUpstreams,
  ) {
    this.#open();
  }

  /** On the shared feed of its shard rather than a call of its own. */
  get shared(): boolean {
    return this.#shared;
  }

  peek(): FeedItem__Output | undefined {
    return this.#queue[this.#head];
  }

  take(): FeedItem__Output | undefined {
    const item = this.#queue[this.#head];
    if (item === undefined) return undefined;
    this.#queue[this.#head++] = undefined as unknown as FeedItem__Output;
    this.taken++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    if (this.#paused && this.#queue.length - this.#head < FOLLOWER_QUEUE_HIGH / 4) {
      this.#paused = false;
      this.#call?.resume();
    }
    return item;
  }

  /** Reopens the feed after what was received (a shard left the ring: read it to its end once more). */
  restart(): void {
    // Its own call must say it caught up again before it joins anything (a shard that left the ring is read to its end).
    this.#live = false;
    this.#leaveShared();
    this.#drop();
    this.#open();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#leaveShared();
    this.#drop();
  }

  #open(): void {
    if (this.#closed) return;
    const client = this.client();
    if (!client) {
      this.#retry();
      return;
    }
    const from: FollowStart = this.#received ? { after: this.#received } : this.start;
    const metadata = new grpc.Metadata();
    if (this.authorization !== undefined) metadata.set('authorization', this.authorization);
    const call = client.follow(
      {
        after: 'after' in from ? formatPosition(from.after) : '',
        fromEnd: 'fromEnd' in from,
        aggregateTypes: [...this.filter.aggregateTypes],
        eventTypes: [...this.filter.eventTypes],
        partitionCount: this.filter.partitions?.count ?? 0,
        partitions: [...(this.filter.partitions?.members ?? [])],
      },
      metadata,
    );
    this.#call = call;
    // A reopened feed starts again with a `start` item; only the first one means anything.
    let first = this.#received !== undefined;
    call.on('data', (batch: FeedBatch__Output) => {
      if (this.#call !== call) return; // a cancelled call's last messages: its successor resends them
      this.#retryMs = 100;
      const items = first && batch.items[0]?.start ? batch.items.slice(1) : batch.items;
      first = false;
      this.#push(items);
      if (this.#live && !this.#shared && this.upstreams !== undefined) this.#joinShared();
      if (this.#call === call && !this.#paused && this.#queue.length - this.#head >= FOLLOWER_QUEUE_HIGH) {
        this.#paused = true;
        call.pause();
      }
      this.wake();
    });
    const broken = (err?: grpc.ServiceError) => {
      if (this.#call !== call || this.#closed) return;
      this.#call = undefined;
      if (err && REFUSALS.has(err.code)) {
        this.refused = err;
        this.wake();
        return;
      }
      if (err && err.code !== grpc.status.UNAVAILABLE) this.logger.warn({ shard: this.shardId, err: err.message }, 'shard feed failed; reopening');
      this.#retry();
    };
    call.on('error', broken);
    call.on('end', () => broken());
  }

  #push(items: readonly FeedItem__Output[]): void {
    for (const item of items) {
      const at = positionTextOf(item);
      if (at !== undefined) {
        this.#received = parsePosition(at);
        this.#receivedText = at;
      }
      if (item.caughtUp) this.#live = true;
      else if (item.fellBehind) this.#live = false;
      this.#queue.push(item);
      this.pushed++;
    }
  }

  /** Moves onto the shared feed if it has the position received last (the own call ends then), else waits for it there. */
  #joinShared(): void {
    if (this.#shared || this.#receivedText === undefined || this.#closed) return;
    this.#membership?.leave();
    const membership = this.upstreams!.join({ shardId: this.shardId, filter: this.filter, authorization: this.authorization, client: this.client }, this.#receivedText, this.#consumer);
    this.#membership = membership;
    if (membership.items === undefined) return;
    this.#shared = true;
    this.#drop();
    this.#push(membership.items);
    this.wake();
  }

  /** A batch of the shared feed. Too far behind it, the follower leaves it and reads its own call again, after what it received. */
  #accept(items: readonly FeedItem__Output[]): void {
    this.#push(items);
    if (this.#queue.length - this.#head >= FOLLOWER_QUEUE_HIGH) {
      this.#leaveShared();
      this.#live = false;
      this.#open();
    }
    this.wake();
  }

  #leaveShared(): void {
    const membership = this.#membership;
    this.#membership = undefined;
    this.#shared = false;
    membership?.leave();
  }

  #retry(): void {
    if (this.#closed) return;
    const delay = Math.random() * this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, RECONNECT_MAX_MS);
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #drop(): void {
    const call = this.#call;
    this.#call = undefined;
    this.#paused = false;
    call?.cancel();
  }
}

/**
 * One live feed per shard, filter and caller, shared by every subscription of
 * the router that follows it: a subscriber reads its own `Follow` call while
 * it catches up, and once it is live it moves onto the shared one at exactly
 * the position it had reached, so N live subscribers cost the shard one call
 * and the router one decoding of each batch instead of N.
 *
 * Positions make the switch exact: the shared feed keeps its most recent
 * items with their positions, and a follower joins only where the position
 * it last received is among them (followers at the shard's live tail read the
 * same batches, so they meet). A follower that falls too far behind the
 * shared feed leaves it and reads its own call again after the position it
 * last received: the shared feed never waits for anyone, and nothing is
 * skipped or repeated either way.
 */
import type { FeedItem__Output } from '../../src/generated/shardwrite/internal/v1/FeedItem.js';
import type { ShardFeedClient } from '../../src/generated/shardwrite/internal/v1/ShardFeed.js';
import type { ServiceError } from '@grpc/grpc-js';
import type { Logger } from '../../src/observability/logger.js';
import { filterKey, type FeedFilter } from '../../src/subscriptions/filter.js';
import { ShardFollower, positionTextOf } from './shard-follower.js';

/** Items of a shared feed kept for followers that want to join. @default 4096 */
export const SHARED_HISTORY = 4096;
/** How long a shared feed stays open without followers (one that is about to join needs it to have started). @default 5000 ms */
const IDLE_CLOSE_MS = 5000;

/** What a shared feed needs of a follower on it. */
export interface SharedConsumer {
  /** The items of one batch, in order (the same objects for every consumer: read only). */
  deliver(items: readonly FeedItem__Output[]): void;
  /** The shard refused the shared call (credentials, filter): so would it refuse the follower's own. */
  refuse(err: ServiceError): void;
  /** A waiting follower's chance to join: the shared feed has new items (its own call is usually a step ahead). */
  retry(): void;
}

/** A follower's place on a shared feed: `items` after its position when it joined, undefined while it waits. */
export interface Membership {
  readonly items: FeedItem__Output[] | undefined;
  leave(): void;
}

export interface SharedFeedKey {
  readonly shardId: string;
  readonly filter: FeedFilter;
  readonly authorization: string | undefined;
  readonly client: () => ShardFeedClient | undefined;
}

export class SharedUpstreams {
  readonly #feeds = new Map<string, SharedFeed>();

  constructor(
    private readonly logger: Logger,
    private readonly history = SHARED_HISTORY,
  ) {}

  /**
   * Joins the shared feed of `key` at `afterPosition` (a position text): the
   * items after it, and from then on `consumer` gets every new batch. Where
   * the feed does not have that position (it is starting, or the follower's
   * own call is ahead of it), the follower waits: it is asked to `retry` at
   * each new batch of the feed.
   */
  join(key: SharedFeedKey, afterPosition: string, consumer: SharedConsumer): Membership {
    const id = `${key.shardId}\u0000${filterKey(key.filter)}\u0000${key.authorization ?? ''}`;
    let feed = this.#feeds.get(id);
    if (feed === undefined || feed.closed) {
      feed = new SharedFeed(key, this.logger, this.history, () => this.#feeds.delete(id));
      this.#feeds.set(id, feed);
    }
    return feed.join(afterPosition, consumer);
  }

  /** Open shared feeds and the followers on each (for tests and metrics). */
  stats(): { feeds: number; consumers: number } {
    let consumers = 0;
    for (const f of this.#feeds.values()) consumers += f.consumers;
    return { feeds: this.#feeds.size, consumers };
  }

  close(): void {
    for (const f of [...this.#feeds.values()]) f.close();
  }
}

class SharedFeed {
  readonly #follower: ShardFollower;
  readonly #consumers = new Set<SharedConsumer>();
  readonly #waiting = new Set<SharedConsumer>();
  /** The newest items with their positions (undefined for items without one), oldest first. */
  #items: FeedItem__Output[] = [];
  #positions: (string | undefined)[] = [];
  #idle: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    key: SharedFeedKey,
    logger: Logger,
    private readonly history: number,
    private readonly onClose: () => void,
  ) {
    this.#follower = new ShardFollower(key.shardId, key.client, key.filter, { fromEnd: true }, key.authorization, () => this.#drain(), logger);
    this.#idleSoon();
  }

  get consumers(): number {
    return this.#consumers.size;
  }

  join(afterPosition: string, consumer: SharedConsumer): Membership {
    const leave = () => this.#leave(consumer);
    const at = this.#positions.lastIndexOf(afterPosition);
    if (at < 0) {
      this.#waiting.add(consumer);
      return { items: undefined, leave };
    }
    this.#waiting.delete(consumer);
    this.#consumers.add(consumer);
    clearTimeout(this.#idle);
    return { items: this.#items.slice(at + 1), leave };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#waiting.clear();
    clearTimeout(this.#idle);
    this.#follower.close();
    this.onClose();
  }

  #leave(consumer: SharedConsumer): void {
    this.#waiting.delete(consumer);
    if (this.#consumers.delete(consumer) && this.#consumers.size === 0) this.#idleSoon();
  }

  #idleSoon(): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.close(), IDLE_CLOSE_MS);
    this.#idle.unref();
  }

  /** Everything the call queued goes to the history and to every consumer at once: the shared call never pauses. */
  #drain(): void {
    const batch: FeedItem__Output[] = [];
    for (let item = this.#follower.take(); item !== undefined; item = this.#follower.take()) batch.push(item);
    if (batch.length === 0) {
      const refused = this.#follower.refused;
      if (refused) {
        for (const c of [...this.#consumers]) c.refuse(refused);
        this.close();
      }
      return;
    }
    for (const item of batch) {
      this.#items.push(item);
      this.#positions.push(positionTextOf(item));
    }
    if (this.#items.length > this.history * 2) {
      this.#items = this.#items.slice(-this.history);
      this.#positions = this.#positions.slice(-this.history);
    }
    for (const c of [...this.#consumers]) c.deliver(batch);
    for (const c of [...this.#waiting]) c.retry();
  }
}

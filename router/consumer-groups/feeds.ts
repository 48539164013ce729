/**
 * What the consumer groups need from the router's cluster-wide subscription
 * (`router/subscriptions/cluster-feed.ts`, whose `ClusterFeeds` fits it): the
 * groups are built and tested against this contract alone, with a fake feed
 * in their tests.
 */
import type { SubscribedEvent__Output } from '../../src/generated/shardwrite/v1/SubscribedEvent.js';
import type { ClusterSubscribeOptions } from '../subscriptions/cluster-feed.js';

export type { ClusterSubscribeOptions };

/** An event as the merged subscription yields it (proto-loader output shape: int64 as strings). */
export type SubscribedEvent = SubscribedEvent__Output;

export type ClusterItem =
  /** `event.checkpoint` is the cluster token right after it. */
  | { readonly kind: 'event'; readonly event: SubscribedEvent }
  /** Progress without a deliverable event. */
  | { readonly kind: 'checkpoint'; readonly checkpoint: string }
  | { readonly kind: 'caught_up' }
  | { readonly kind: 'fell_behind' };

export interface ClusterFeeds {
  /**
   * Pull-based: the caller's pace is the subscription's pace (nothing buffers
   * without bound). Ends when `signal` aborts. Throws ValidationError for a
   * malformed token / unknown filter names.
   */
  subscribe(options: ClusterSubscribeOptions, signal: AbortSignal): AsyncIterable<ClusterItem>;
  /** Each shard's current tail position, for lag: Map<shardId, "tx:position">. */
  tails(): Promise<Map<string, string>>;
}

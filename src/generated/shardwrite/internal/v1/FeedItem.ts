// Original file: proto/shardwrite/internal/v1/shard_feed.proto

import type { EncodedEvent as _shardwrite_internal_v1_EncodedEvent, EncodedEvent__Output as _shardwrite_internal_v1_EncodedEvent__Output } from '../../../shardwrite/internal/v1/EncodedEvent.js';
import type { Barrier as _shardwrite_internal_v1_Barrier, Barrier__Output as _shardwrite_internal_v1_Barrier__Output } from '../../../shardwrite/internal/v1/Barrier.js';
import type { Start as _shardwrite_internal_v1_Start, Start__Output as _shardwrite_internal_v1_Start__Output } from '../../../shardwrite/internal/v1/Start.js';

export interface FeedItem {
  'event'?: (_shardwrite_internal_v1_EncodedEvent | null);
  /**
   * Everything up to this position was passed (nothing for the caller).
   */
  'progress'?: (string);
  /**
   * Nothing after this item may be delivered before the origin shard's
   * feed has passed `origin_position`: the events that follow may continue
   * streams whose earlier events were committed there (a rebalance copied
   * them here).
   */
  'barrier'?: (_shardwrite_internal_v1_Barrier | null);
  'caughtUp'?: (boolean);
  'fellBehind'?: (boolean);
  /**
   * First item: the position the feed starts after, and (from_end) the
   * newest origin position per origin shard among the copies at or below it.
   */
  'start'?: (_shardwrite_internal_v1_Start | null);
  'kind'?: "event"|"progress"|"barrier"|"caughtUp"|"fellBehind"|"start";
}

export interface FeedItem__Output {
  'event'?: (_shardwrite_internal_v1_EncodedEvent__Output | null);
  /**
   * Everything up to this position was passed (nothing for the caller).
   */
  'progress'?: (string);
  /**
   * Nothing after this item may be delivered before the origin shard's
   * feed has passed `origin_position`: the events that follow may continue
   * streams whose earlier events were committed there (a rebalance copied
   * them here).
   */
  'barrier'?: (_shardwrite_internal_v1_Barrier__Output | null);
  'caughtUp'?: (boolean);
  'fellBehind'?: (boolean);
  /**
   * First item: the position the feed starts after, and (from_end) the
   * newest origin position per origin shard among the copies at or below it.
   */
  'start'?: (_shardwrite_internal_v1_Start__Output | null);
  'kind'?: "event"|"progress"|"barrier"|"caughtUp"|"fellBehind"|"start";
}

// Original file: proto/shardwrite/internal/v1/shard_feed.proto

import type { FeedItem as _shardwrite_internal_v1_FeedItem, FeedItem__Output as _shardwrite_internal_v1_FeedItem__Output } from '../../../shardwrite/internal/v1/FeedItem.js';

export interface FeedBatch {
  'items'?: (_shardwrite_internal_v1_FeedItem)[];
}

export interface FeedBatch__Output {
  'items': (_shardwrite_internal_v1_FeedItem__Output)[];
}

// Original file: proto/shardwrite/internal/v1/shard_feed.proto


/**
 * A shard position is "<transaction id>:<event position>" (both decimal):
 * the order a feed follows. "" = before the first event.
 */
export interface FollowRequest {
  'after'?: (string);
  /**
   * Start at the current tail; `after` is ignored.
   */
  'fromEnd'?: (boolean);
  'aggregateTypes'?: (string)[];
  'eventTypes'?: (string)[];
  /**
   * When set, only streams whose partition (see src/subscriptions/partition.ts)
   * is in `partitions`.
   */
  'partitionCount'?: (number);
  'partitions'?: (number)[];
}

/**
 * A shard position is "<transaction id>:<event position>" (both decimal):
 * the order a feed follows. "" = before the first event.
 */
export interface FollowRequest__Output {
  'after': (string);
  /**
   * Start at the current tail; `after` is ignored.
   */
  'fromEnd': (boolean);
  'aggregateTypes': (string)[];
  'eventTypes': (string)[];
  /**
   * When set, only streams whose partition (see src/subscriptions/partition.ts)
   * is in `partitions`.
   */
  'partitionCount': (number);
  'partitions': (number)[];
}

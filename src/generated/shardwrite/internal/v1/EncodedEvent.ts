// Original file: proto/shardwrite/internal/v1/shard_feed.proto


/**
 * An event as the shard encoded it once: a shardwrite.v1.SubscribedEvent
 * without its checkpoint (field 11), which whoever delivers it appends.
 */
export interface EncodedEvent {
  'event'?: (Buffer | Uint8Array | string);
  /**
   * This shard's position of the event.
   */
  'position'?: (string);
  /**
   * Consumer groups partition by it.
   */
  'streamId'?: (string);
}

/**
 * An event as the shard encoded it once: a shardwrite.v1.SubscribedEvent
 * without its checkpoint (field 11), which whoever delivers it appends.
 */
export interface EncodedEvent__Output {
  'event': (Buffer);
  /**
   * This shard's position of the event.
   */
  'position': (string);
  /**
   * Consumer groups partition by it.
   */
  'streamId': (string);
}

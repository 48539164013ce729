// Original file: proto/shardwrite/v1/subscriptions.proto


export interface SubscribeRequest {
  /**
   * "" = the beginning, "end" = only what commits from now, else a
   * checkpoint token received earlier.
   */
  'from'?: (string);
  /**
   * Empty = all.
   */
  'aggregateTypes'?: (string)[];
  /**
   * Empty = all.
   */
  'eventTypes'?: (string)[];
  /**
   * Up to this many events per response, as `events`, instead of one `event`
   * per response (0 or 1 = one per response, the default). A batch holds only
   * what is ready at once: a lone event is never held back. For volume: the
   * per-message cost of gRPC is then paid per batch.
   */
  'maxBatch'?: (number);
}

export interface SubscribeRequest__Output {
  /**
   * "" = the beginning, "end" = only what commits from now, else a
   * checkpoint token received earlier.
   */
  'from': (string);
  /**
   * Empty = all.
   */
  'aggregateTypes': (string)[];
  /**
   * Empty = all.
   */
  'eventTypes': (string)[];
  /**
   * Up to this many events per response, as `events`, instead of one `event`
   * per response (0 or 1 = one per response, the default). A batch holds only
   * what is ready at once: a lone event is never held back. For volume: the
   * per-message cost of gRPC is then paid per batch.
   */
  'maxBatch': (number);
}

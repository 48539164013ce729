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
}

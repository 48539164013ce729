// Original file: proto/shardwrite/v1/subscriptions.proto

import type { SubscribedEvent as _shardwrite_v1_SubscribedEvent, SubscribedEvent__Output as _shardwrite_v1_SubscribedEvent__Output } from '../../shardwrite/v1/SubscribedEvent.js';

export interface GroupEvent {
  'event'?: (_shardwrite_v1_SubscribedEvent | null);
  /**
   * Send it back in an `Ack` once the event is processed.
   */
  'ackId'?: (string);
  'partition'?: (number);
}

export interface GroupEvent__Output {
  'event': (_shardwrite_v1_SubscribedEvent__Output | null);
  /**
   * Send it back in an `Ack` once the event is processed.
   */
  'ackId': (string);
  'partition': (number);
}

// Original file: proto/shardwrite/v1/subscriptions.proto

import type { SubscribedEvent as _shardwrite_v1_SubscribedEvent, SubscribedEvent__Output as _shardwrite_v1_SubscribedEvent__Output } from '../../shardwrite/v1/SubscribedEvent.js';

export interface EventBatch {
  'events'?: (_shardwrite_v1_SubscribedEvent)[];
}

export interface EventBatch__Output {
  'events': (_shardwrite_v1_SubscribedEvent__Output)[];
}

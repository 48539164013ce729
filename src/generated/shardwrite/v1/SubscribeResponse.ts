// Original file: proto/shardwrite/v1/subscriptions.proto

import type { SubscribedEvent as _shardwrite_v1_SubscribedEvent, SubscribedEvent__Output as _shardwrite_v1_SubscribedEvent__Output } from '../../shardwrite/v1/SubscribedEvent.js';
import type { CaughtUp as _shardwrite_v1_CaughtUp, CaughtUp__Output as _shardwrite_v1_CaughtUp__Output } from '../../shardwrite/v1/CaughtUp.js';
import type { FellBehind as _shardwrite_v1_FellBehind, FellBehind__Output as _shardwrite_v1_FellBehind__Output } from '../../shardwrite/v1/FellBehind.js';
import type { EventBatch as _shardwrite_v1_EventBatch, EventBatch__Output as _shardwrite_v1_EventBatch__Output } from '../../shardwrite/v1/EventBatch.js';

export interface SubscribeResponse {
  'event'?: (_shardwrite_v1_SubscribedEvent | null);
  /**
   * An opaque token: resume from here (sent periodically, also when
   * filters skip much).
   */
  'checkpoint'?: (string);
  /**
   * The catch-up reached the live tail.
   */
  'caughtUp'?: (_shardwrite_v1_CaughtUp | null);
  /**
   * This subscriber was too slow for the live tail and is reading from the
   * store again; it catches up by itself.
   */
  'fellBehind'?: (_shardwrite_v1_FellBehind | null);
  /**
   * Several events in order (only when the request set `max_batch`); each
   * carries its own checkpoint.
   */
  'events'?: (_shardwrite_v1_EventBatch | null);
  'kind'?: "event"|"checkpoint"|"caughtUp"|"fellBehind"|"events";
}

export interface SubscribeResponse__Output {
  'event'?: (_shardwrite_v1_SubscribedEvent__Output | null);
  /**
   * An opaque token: resume from here (sent periodically, also when
   * filters skip much).
   */
  'checkpoint'?: (string);
  /**
   * The catch-up reached the live tail.
   */
  'caughtUp'?: (_shardwrite_v1_CaughtUp__Output | null);
  /**
   * This subscriber was too slow for the live tail and is reading from the
   * store again; it catches up by itself.
   */
  'fellBehind'?: (_shardwrite_v1_FellBehind__Output | null);
  /**
   * Several events in order (only when the request set `max_batch`); each
   * carries its own checkpoint.
   */
  'events'?: (_shardwrite_v1_EventBatch__Output | null);
  'kind'?: "event"|"checkpoint"|"caughtUp"|"fellBehind"|"events";
}

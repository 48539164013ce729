// Original file: proto/shardwrite/v1/orders.proto

import type { Event as _shardwrite_v1_Event, Event__Output as _shardwrite_v1_Event__Output } from '../../shardwrite/v1/Event.js';
import type { Long } from '@grpc/proto-loader';

/**
 * What a successful command did.
 */
export interface CommandResult {
  /**
   * "<aggregate type>-<aggregate id>", e.g. "order-lines-o42".
   */
  'streamId'?: (string);
  /**
   * The stream's version after the command.
   */
  'version'?: (number | string | Long);
  /**
   * The events the command appended (the original ones for a duplicate).
   */
  'events'?: (_shardwrite_v1_Event)[];
  /**
   * True when `command_id` was seen before on this stream: nothing was appended.
   */
  'duplicate'?: (boolean);
}

/**
 * What a successful command did.
 */
export interface CommandResult__Output {
  /**
   * "<aggregate type>-<aggregate id>", e.g. "order-lines-o42".
   */
  'streamId': (string);
  /**
   * The stream's version after the command.
   */
  'version': (string);
  /**
   * The events the command appended (the original ones for a duplicate).
   */
  'events': (_shardwrite_v1_Event__Output)[];
  /**
   * True when `command_id` was seen before on this stream: nothing was appended.
   */
  'duplicate': (boolean);
}

// Original file: proto/shardwrite/v1/events.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { Long } from '@grpc/proto-loader';

export interface Event {
  'streamId'?: (string);
  /**
   * 1..n within the stream, without gaps.
   */
  'version'?: (number | string | Long);
  /**
   * e.g. "OrderPlaced".
   */
  'type'?: (string);
  /**
   * The schema version of `data` (after upcasting).
   */
  'schemaVersion'?: (number);
  /**
   * The event's payload as a JSON object.
   */
  'data'?: (string);
  /**
   * The shard-local position, in commit order.
   */
  'position'?: (number | string | Long);
  'recordedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Who caused the event and in which correlation (audit): `principal` and
   * `tenant` (the stream's tenant) always; `command_id` and `request_digest`
   * when the command had an id; `correlation_id` (the caller's
   * x-correlation-id, else the command id) and `causation_id`
   * (x-causation-id) where known.
   */
  'metadata'?: ({[key: string]: string});
}

export interface Event__Output {
  'streamId': (string);
  /**
   * 1..n within the stream, without gaps.
   */
  'version': (string);
  /**
   * e.g. "OrderPlaced".
   */
  'type': (string);
  /**
   * The schema version of `data` (after upcasting).
   */
  'schemaVersion': (number);
  /**
   * The event's payload as a JSON object.
   */
  'data': (string);
  /**
   * The shard-local position, in commit order.
   */
  'position': (string);
  'recordedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Who caused the event and in which correlation (audit): `principal` and
   * `tenant` (the stream's tenant) always; `command_id` and `request_digest`
   * when the command had an id; `correlation_id` (the caller's
   * x-correlation-id, else the command id) and `causation_id`
   * (x-causation-id) where known.
   */
  'metadata': ({[key: string]: string});
}

// Original file: proto/shardwrite/v1/subscriptions.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { Long } from '@grpc/proto-loader';

export interface SubscribedEvent {
  /**
   * Globally unique and stable, also after the stream moves.
   */
  'eventId'?: (string);
  'aggregateType'?: (string);
  'aggregateId'?: (string);
  'streamId'?: (string);
  'version'?: (number | string | Long);
  'type'?: (string);
  'schemaVersion'?: (number);
  /**
   * JSON, upcast to the current schema.
   */
  'data'?: (string);
  'recordedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Who caused the event and in which correlation (audit, as in Event.metadata): `principal` and
   * `tenant` (the stream's tenant) always; `command_id` and `request_digest`
   * when the command had an id; `correlation_id` (the caller's
   * x-correlation-id, else the command id) and `causation_id`
   * (x-causation-id) where known.
   */
  'metadata'?: ({[key: string]: string});
  /**
   * Resume right after this event.
   */
  'checkpoint'?: (string);
  /**
   * The shard that committed it.
   */
  'shardId'?: (string);
}

export interface SubscribedEvent__Output {
  /**
   * Globally unique and stable, also after the stream moves.
   */
  'eventId': (string);
  'aggregateType': (string);
  'aggregateId': (string);
  'streamId': (string);
  'version': (string);
  'type': (string);
  'schemaVersion': (number);
  /**
   * JSON, upcast to the current schema.
   */
  'data': (string);
  'recordedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Who caused the event and in which correlation (audit, as in Event.metadata): `principal` and
   * `tenant` (the stream's tenant) always; `command_id` and `request_digest`
   * when the command had an id; `correlation_id` (the caller's
   * x-correlation-id, else the command id) and `causation_id`
   * (x-causation-id) where known.
   */
  'metadata': ({[key: string]: string});
  /**
   * Resume right after this event.
   */
  'checkpoint': (string);
  /**
   * The shard that committed it.
   */
  'shardId': (string);
}

// Original file: proto/shardwrite/v1/events.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Event as _shardwrite_v1_Event, Event__Output as _shardwrite_v1_Event__Output } from '../../shardwrite/v1/Event.js';
import type { ReadStreamRequest as _shardwrite_v1_ReadStreamRequest, ReadStreamRequest__Output as _shardwrite_v1_ReadStreamRequest__Output } from '../../shardwrite/v1/ReadStreamRequest.js';

/**
 * Reads the events of one stream from the shard that owns it.
 */
export interface EventStoreServiceClient extends grpc.Client {
  /**
   * Streams the events of `aggregate_type`/`aggregate_id` from `from_version`
   * (inclusive; 0 or 1 = from the start), in version order, upcast to the
   * current schema. An unknown aggregate type is INVALID_ARGUMENT; a stream
   * with no events ends without a message.
   */
  ReadStream(argument: _shardwrite_v1_ReadStreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Event__Output>;
  ReadStream(argument: _shardwrite_v1_ReadStreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Event__Output>;
  /**
   * Streams the events of `aggregate_type`/`aggregate_id` from `from_version`
   * (inclusive; 0 or 1 = from the start), in version order, upcast to the
   * current schema. An unknown aggregate type is INVALID_ARGUMENT; a stream
   * with no events ends without a message.
   */
  readStream(argument: _shardwrite_v1_ReadStreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Event__Output>;
  readStream(argument: _shardwrite_v1_ReadStreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Event__Output>;
  
}

/**
 * Reads the events of one stream from the shard that owns it.
 */
export interface EventStoreServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Streams the events of `aggregate_type`/`aggregate_id` from `from_version`
   * (inclusive; 0 or 1 = from the start), in version order, upcast to the
   * current schema. An unknown aggregate type is INVALID_ARGUMENT; a stream
   * with no events ends without a message.
   */
  ReadStream: grpc.handleServerStreamingCall<_shardwrite_v1_ReadStreamRequest__Output, _shardwrite_v1_Event>;
  
}

export interface EventStoreServiceDefinition extends grpc.ServiceDefinition {
  ReadStream: MethodDefinition<_shardwrite_v1_ReadStreamRequest, _shardwrite_v1_Event, _shardwrite_v1_ReadStreamRequest__Output, _shardwrite_v1_Event__Output>
}

// Original file: proto/shardwrite/v1/subscriptions.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ConsumeRequest as _shardwrite_v1_ConsumeRequest, ConsumeRequest__Output as _shardwrite_v1_ConsumeRequest__Output } from '../../shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse as _shardwrite_v1_ConsumeResponse, ConsumeResponse__Output as _shardwrite_v1_ConsumeResponse__Output } from '../../shardwrite/v1/ConsumeResponse.js';

/**
 * Durable consumer groups: the service keeps each group's checkpoints. A
 * group's events are split into partitions by stream id (every event of a
 * stream is in the same partition); each partition is leased to one member
 * at a time and delivered to it in order. Members that join or leave (or
 * whose connection dies) get partitions reassigned; a partition resumes
 * after its last acknowledgement, so a redelivery only ever happens after a
 * member or a connection failed — never because a shard was added or
 * removed.
 */
export interface ConsumerGroupServiceClient extends grpc.Client {
  /**
   * One member's session. The first message must be `join`; after it the
   * member sends `ack`s. The server sends `assignment` whenever the member's
   * partitions change, then the events of its partitions. Ends when the
   * caller closes it (its partitions are handed over after the acks it sent)
   * or the server shuts down.
   */
  Consume(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeResponse__Output>;
  Consume(options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeResponse__Output>;
  /**
   * One member's session. The first message must be `join`; after it the
   * member sends `ack`s. The server sends `assignment` whenever the member's
   * partitions change, then the events of its partitions. Ends when the
   * caller closes it (its partitions are handed over after the acks it sent)
   * or the server shuts down.
   */
  consume(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeResponse__Output>;
  consume(options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeResponse__Output>;
  
}

/**
 * Durable consumer groups: the service keeps each group's checkpoints. A
 * group's events are split into partitions by stream id (every event of a
 * stream is in the same partition); each partition is leased to one member
 * at a time and delivered to it in order. Members that join or leave (or
 * whose connection dies) get partitions reassigned; a partition resumes
 * after its last acknowledgement, so a redelivery only ever happens after a
 * member or a connection failed — never because a shard was added or
 * removed.
 */
export interface ConsumerGroupServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * One member's session. The first message must be `join`; after it the
   * member sends `ack`s. The server sends `assignment` whenever the member's
   * partitions change, then the events of its partitions. Ends when the
   * caller closes it (its partitions are handed over after the acks it sent)
   * or the server shuts down.
   */
  Consume: grpc.handleBidiStreamingCall<_shardwrite_v1_ConsumeRequest__Output, _shardwrite_v1_ConsumeResponse>;
  
}

export interface ConsumerGroupServiceDefinition extends grpc.ServiceDefinition {
  Consume: MethodDefinition<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeResponse, _shardwrite_v1_ConsumeRequest__Output, _shardwrite_v1_ConsumeResponse__Output>
}

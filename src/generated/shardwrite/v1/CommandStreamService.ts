// Original file: proto/shardwrite/v1/command_stream.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { StreamedCommand as _shardwrite_v1_StreamedCommand, StreamedCommand__Output as _shardwrite_v1_StreamedCommand__Output } from '../../shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome as _shardwrite_v1_StreamedOutcome, StreamedOutcome__Output as _shardwrite_v1_StreamedOutcome__Output } from '../../shardwrite/v1/StreamedOutcome.js';

/**
 * Pipelined commands over one long-lived bidirectional stream: send many
 * commands without waiting for each reply. Every command gets exactly one
 * outcome, matched by `request_id`; outcomes may arrive out of order, but
 * commands for one aggregate run in the order they were sent. One command's
 * error never closes the stream.
 * 
 * Flow control: a caller that sends faster than the shards commit is slowed
 * by the stream's flow control; beyond the per-stream cap of commands in
 * flight, commands are answered at once with RESOURCE_EXHAUSTED (OVERLOADED).
 */
export interface CommandStreamServiceClient extends grpc.Client {
  Execute(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_StreamedCommand, _shardwrite_v1_StreamedOutcome__Output>;
  Execute(options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_StreamedCommand, _shardwrite_v1_StreamedOutcome__Output>;
  execute(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_StreamedCommand, _shardwrite_v1_StreamedOutcome__Output>;
  execute(options?: grpc.CallOptions): grpc.ClientDuplexStream<_shardwrite_v1_StreamedCommand, _shardwrite_v1_StreamedOutcome__Output>;
  
}

/**
 * Pipelined commands over one long-lived bidirectional stream: send many
 * commands without waiting for each reply. Every command gets exactly one
 * outcome, matched by `request_id`; outcomes may arrive out of order, but
 * commands for one aggregate run in the order they were sent. One command's
 * error never closes the stream.
 * 
 * Flow control: a caller that sends faster than the shards commit is slowed
 * by the stream's flow control; beyond the per-stream cap of commands in
 * flight, commands are answered at once with RESOURCE_EXHAUSTED (OVERLOADED).
 */
export interface CommandStreamServiceHandlers extends grpc.UntypedServiceImplementation {
  Execute: grpc.handleBidiStreamingCall<_shardwrite_v1_StreamedCommand__Output, _shardwrite_v1_StreamedOutcome>;
  
}

export interface CommandStreamServiceDefinition extends grpc.ServiceDefinition {
  Execute: MethodDefinition<_shardwrite_v1_StreamedCommand, _shardwrite_v1_StreamedOutcome, _shardwrite_v1_StreamedCommand__Output, _shardwrite_v1_StreamedOutcome__Output>
}

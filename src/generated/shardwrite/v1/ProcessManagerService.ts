// Original file: proto/shardwrite/v1/process_managers.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CommandResult as _shardwrite_v1_CommandResult, CommandResult__Output as _shardwrite_v1_CommandResult__Output } from '../../shardwrite/v1/CommandResult.js';
import type { CompleteProcessStepRequest as _shardwrite_v1_CompleteProcessStepRequest, CompleteProcessStepRequest__Output as _shardwrite_v1_CompleteProcessStepRequest__Output } from '../../shardwrite/v1/CompleteProcessStepRequest.js';
import type { RecordProcessInputRequest as _shardwrite_v1_RecordProcessInputRequest, RecordProcessInputRequest__Output as _shardwrite_v1_RecordProcessInputRequest__Output } from '../../shardwrite/v1/RecordProcessInputRequest.js';
import type { RetryProcessRequest as _shardwrite_v1_RetryProcessRequest, RetryProcessRequest__Output as _shardwrite_v1_RetryProcessRequest__Output } from '../../shardwrite/v1/RetryProcessRequest.js';

/**
 * Commands on process-manager instances. An instance is a stream
 * `pm-<process manager>-<instance id>` (e.g. `pm-order-fulfilment-o42`), kept
 * on the shard that owns `instance_id` (the correlation id: for order
 * fulfilment, the order id), so it is snapshotted, moved and fenced like any
 * stream. These are sent by the process-manager worker (`shardwrite
 * pm-worker`) and by `shardwrite pm retry`; other callers have no reason to.
 * 
 * `command_id` and `expected_version` mean what they mean on OrderService.
 */
export interface ProcessManagerServiceClient extends grpc.Client {
  CompleteProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CompleteProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CompleteProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CompleteProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  completeProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  completeProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  completeProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  completeProcessStep(argument: _shardwrite_v1_CompleteProcessStepRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  RecordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RecordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RecordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RecordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  recordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  recordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  recordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  recordProcessInput(argument: _shardwrite_v1_RecordProcessInputRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  RetryProcess(argument: _shardwrite_v1_RetryProcessRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RetryProcess(argument: _shardwrite_v1_RetryProcessRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RetryProcess(argument: _shardwrite_v1_RetryProcessRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RetryProcess(argument: _shardwrite_v1_RetryProcessRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  retryProcess(argument: _shardwrite_v1_RetryProcessRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  retryProcess(argument: _shardwrite_v1_RetryProcessRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  retryProcess(argument: _shardwrite_v1_RetryProcessRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  retryProcess(argument: _shardwrite_v1_RetryProcessRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
}

/**
 * Commands on process-manager instances. An instance is a stream
 * `pm-<process manager>-<instance id>` (e.g. `pm-order-fulfilment-o42`), kept
 * on the shard that owns `instance_id` (the correlation id: for order
 * fulfilment, the order id), so it is snapshotted, moved and fenced like any
 * stream. These are sent by the process-manager worker (`shardwrite
 * pm-worker`) and by `shardwrite pm retry`; other callers have no reason to.
 * 
 * `command_id` and `expected_version` mean what they mean on OrderService.
 */
export interface ProcessManagerServiceHandlers extends grpc.UntypedServiceImplementation {
  CompleteProcessStep: grpc.handleUnaryCall<_shardwrite_v1_CompleteProcessStepRequest__Output, _shardwrite_v1_CommandResult>;
  
  RecordProcessInput: grpc.handleUnaryCall<_shardwrite_v1_RecordProcessInputRequest__Output, _shardwrite_v1_CommandResult>;
  
  RetryProcess: grpc.handleUnaryCall<_shardwrite_v1_RetryProcessRequest__Output, _shardwrite_v1_CommandResult>;
  
}

export interface ProcessManagerServiceDefinition extends grpc.ServiceDefinition {
  CompleteProcessStep: MethodDefinition<_shardwrite_v1_CompleteProcessStepRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_CompleteProcessStepRequest__Output, _shardwrite_v1_CommandResult__Output>
  RecordProcessInput: MethodDefinition<_shardwrite_v1_RecordProcessInputRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_RecordProcessInputRequest__Output, _shardwrite_v1_CommandResult__Output>
  RetryProcess: MethodDefinition<_shardwrite_v1_RetryProcessRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_RetryProcessRequest__Output, _shardwrite_v1_CommandResult__Output>
}

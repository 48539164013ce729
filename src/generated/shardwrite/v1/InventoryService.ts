// Original file: proto/shardwrite/v1/inventory.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CommandResult as _shardwrite_v1_CommandResult, CommandResult__Output as _shardwrite_v1_CommandResult__Output } from '../../shardwrite/v1/CommandResult.js';
import type { ReceiveStockRequest as _shardwrite_v1_ReceiveStockRequest, ReceiveStockRequest__Output as _shardwrite_v1_ReceiveStockRequest__Output } from '../../shardwrite/v1/ReceiveStockRequest.js';
import type { ReleaseReservationRequest as _shardwrite_v1_ReleaseReservationRequest, ReleaseReservationRequest__Output as _shardwrite_v1_ReleaseReservationRequest__Output } from '../../shardwrite/v1/ReleaseReservationRequest.js';
import type { ReserveStockRequest as _shardwrite_v1_ReserveStockRequest, ReserveStockRequest__Output as _shardwrite_v1_ReserveStockRequest__Output } from '../../shardwrite/v1/ReserveStockRequest.js';

/**
 * Commands on the stock of one SKU (aggregate `inventory`, stream
 * `inventory-<sku>`), on the shard that owns `sku`. The available quantity
 * (received minus reserved) never goes below zero: a reservation it would
 * cross is refused with FAILED_PRECONDITION / BUSINESS_RULE.
 * 
 * `command_id` and `expected_version` mean what they mean on OrderService.
 * Streamed on CommandStreamService in its `packed` member
 * (type_url "type.googleapis.com/shardwrite.v1.ReserveStockRequest", …).
 */
export interface InventoryServiceClient extends grpc.Client {
  ReceiveStock(argument: _shardwrite_v1_ReceiveStockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReceiveStock(argument: _shardwrite_v1_ReceiveStockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReceiveStock(argument: _shardwrite_v1_ReceiveStockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReceiveStock(argument: _shardwrite_v1_ReceiveStockRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  receiveStock(argument: _shardwrite_v1_ReceiveStockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  receiveStock(argument: _shardwrite_v1_ReceiveStockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  receiveStock(argument: _shardwrite_v1_ReceiveStockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  receiveStock(argument: _shardwrite_v1_ReceiveStockRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  ReleaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReleaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReleaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReleaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  releaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  releaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  releaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  releaseReservation(argument: _shardwrite_v1_ReleaseReservationRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  ReserveStock(argument: _shardwrite_v1_ReserveStockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReserveStock(argument: _shardwrite_v1_ReserveStockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReserveStock(argument: _shardwrite_v1_ReserveStockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ReserveStock(argument: _shardwrite_v1_ReserveStockRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  reserveStock(argument: _shardwrite_v1_ReserveStockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  reserveStock(argument: _shardwrite_v1_ReserveStockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  reserveStock(argument: _shardwrite_v1_ReserveStockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  reserveStock(argument: _shardwrite_v1_ReserveStockRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
}

/**
 * Commands on the stock of one SKU (aggregate `inventory`, stream
 * `inventory-<sku>`), on the shard that owns `sku`. The available quantity
 * (received minus reserved) never goes below zero: a reservation it would
 * cross is refused with FAILED_PRECONDITION / BUSINESS_RULE.
 * 
 * `command_id` and `expected_version` mean what they mean on OrderService.
 * Streamed on CommandStreamService in its `packed` member
 * (type_url "type.googleapis.com/shardwrite.v1.ReserveStockRequest", …).
 */
export interface InventoryServiceHandlers extends grpc.UntypedServiceImplementation {
  ReceiveStock: grpc.handleUnaryCall<_shardwrite_v1_ReceiveStockRequest__Output, _shardwrite_v1_CommandResult>;
  
  ReleaseReservation: grpc.handleUnaryCall<_shardwrite_v1_ReleaseReservationRequest__Output, _shardwrite_v1_CommandResult>;
  
  ReserveStock: grpc.handleUnaryCall<_shardwrite_v1_ReserveStockRequest__Output, _shardwrite_v1_CommandResult>;
  
}

export interface InventoryServiceDefinition extends grpc.ServiceDefinition {
  ReceiveStock: MethodDefinition<_shardwrite_v1_ReceiveStockRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_ReceiveStockRequest__Output, _shardwrite_v1_CommandResult__Output>
  ReleaseReservation: MethodDefinition<_shardwrite_v1_ReleaseReservationRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_ReleaseReservationRequest__Output, _shardwrite_v1_CommandResult__Output>
  ReserveStock: MethodDefinition<_shardwrite_v1_ReserveStockRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_ReserveStockRequest__Output, _shardwrite_v1_CommandResult__Output>
}

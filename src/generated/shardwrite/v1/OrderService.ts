// Original file: proto/shardwrite/v1/orders.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AddOrderLineRequest as _shardwrite_v1_AddOrderLineRequest, AddOrderLineRequest__Output as _shardwrite_v1_AddOrderLineRequest__Output } from '../../shardwrite/v1/AddOrderLineRequest.js';
import type { AddOrderLinesRequest as _shardwrite_v1_AddOrderLinesRequest, AddOrderLinesRequest__Output as _shardwrite_v1_AddOrderLinesRequest__Output } from '../../shardwrite/v1/AddOrderLinesRequest.js';
import type { AuthorizePaymentRequest as _shardwrite_v1_AuthorizePaymentRequest, AuthorizePaymentRequest__Output as _shardwrite_v1_AuthorizePaymentRequest__Output } from '../../shardwrite/v1/AuthorizePaymentRequest.js';
import type { CancelOrderRequest as _shardwrite_v1_CancelOrderRequest, CancelOrderRequest__Output as _shardwrite_v1_CancelOrderRequest__Output } from '../../shardwrite/v1/CancelOrderRequest.js';
import type { CapturePaymentRequest as _shardwrite_v1_CapturePaymentRequest, CapturePaymentRequest__Output as _shardwrite_v1_CapturePaymentRequest__Output } from '../../shardwrite/v1/CapturePaymentRequest.js';
import type { CommandResult as _shardwrite_v1_CommandResult, CommandResult__Output as _shardwrite_v1_CommandResult__Output } from '../../shardwrite/v1/CommandResult.js';
import type { MarkPaymentCapturedRequest as _shardwrite_v1_MarkPaymentCapturedRequest, MarkPaymentCapturedRequest__Output as _shardwrite_v1_MarkPaymentCapturedRequest__Output } from '../../shardwrite/v1/MarkPaymentCapturedRequest.js';
import type { PlaceOrderRequest as _shardwrite_v1_PlaceOrderRequest, PlaceOrderRequest__Output as _shardwrite_v1_PlaceOrderRequest__Output } from '../../shardwrite/v1/PlaceOrderRequest.js';
import type { RefundPaymentRequest as _shardwrite_v1_RefundPaymentRequest, RefundPaymentRequest__Output as _shardwrite_v1_RefundPaymentRequest__Output } from '../../shardwrite/v1/RefundPaymentRequest.js';
import type { RemoveOrderLineRequest as _shardwrite_v1_RemoveOrderLineRequest, RemoveOrderLineRequest__Output as _shardwrite_v1_RemoveOrderLineRequest__Output } from '../../shardwrite/v1/RemoveOrderLineRequest.js';
import type { ShipOrderRequest as _shardwrite_v1_ShipOrderRequest, ShipOrderRequest__Output as _shardwrite_v1_ShipOrderRequest__Output } from '../../shardwrite/v1/ShipOrderRequest.js';
import type { UpdateShippingAddressRequest as _shardwrite_v1_UpdateShippingAddressRequest, UpdateShippingAddressRequest__Output as _shardwrite_v1_UpdateShippingAddressRequest__Output } from '../../shardwrite/v1/UpdateShippingAddressRequest.js';

/**
 * Commands on an order. An order is three aggregates with their own streams
 * (`order-header`, `order-lines`, `order-payment`); all three live on the shard
 * that owns `order_id`.
 * 
 * Every request carries:
 * - `order_id`: the order (1..128 characters from [A-Za-z0-9._:-]);
 * - `command_id`: an optional idempotency key (at most 128 characters). A
 * repeat on the same stream returns the original result with
 * `duplicate = true` and appends nothing;
 * - `expected_version`: if set, the command runs only when the stream is at
 * exactly this version (0 = the stream does not exist yet); otherwise it
 * fails with ABORTED / VERSION_CONFLICT carrying the current version.
 * 
 * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` (domain
 * `shardwrite.dev`) in the `grpc-status-details-bin` trailer.
 */
export interface OrderServiceClient extends grpc.Client {
  AddOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLine(argument: _shardwrite_v1_AddOrderLineRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  AddOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AddOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  addOrderLines(argument: _shardwrite_v1_AddOrderLinesRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  AuthorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AuthorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AuthorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  AuthorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  authorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  authorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  authorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  authorizePayment(argument: _shardwrite_v1_AuthorizePaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  CancelOrder(argument: _shardwrite_v1_CancelOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CancelOrder(argument: _shardwrite_v1_CancelOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CancelOrder(argument: _shardwrite_v1_CancelOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CancelOrder(argument: _shardwrite_v1_CancelOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  cancelOrder(argument: _shardwrite_v1_CancelOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  cancelOrder(argument: _shardwrite_v1_CancelOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  cancelOrder(argument: _shardwrite_v1_CancelOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  cancelOrder(argument: _shardwrite_v1_CancelOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  CapturePayment(argument: _shardwrite_v1_CapturePaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CapturePayment(argument: _shardwrite_v1_CapturePaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CapturePayment(argument: _shardwrite_v1_CapturePaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  CapturePayment(argument: _shardwrite_v1_CapturePaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  capturePayment(argument: _shardwrite_v1_CapturePaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  capturePayment(argument: _shardwrite_v1_CapturePaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  capturePayment(argument: _shardwrite_v1_CapturePaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  capturePayment(argument: _shardwrite_v1_CapturePaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  MarkPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  MarkPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  MarkPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  MarkPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  markPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  markPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  markPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  markPaymentCaptured(argument: _shardwrite_v1_MarkPaymentCapturedRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  PlaceOrder(argument: _shardwrite_v1_PlaceOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  PlaceOrder(argument: _shardwrite_v1_PlaceOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  PlaceOrder(argument: _shardwrite_v1_PlaceOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  PlaceOrder(argument: _shardwrite_v1_PlaceOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  placeOrder(argument: _shardwrite_v1_PlaceOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  placeOrder(argument: _shardwrite_v1_PlaceOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  placeOrder(argument: _shardwrite_v1_PlaceOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  placeOrder(argument: _shardwrite_v1_PlaceOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  RefundPayment(argument: _shardwrite_v1_RefundPaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RefundPayment(argument: _shardwrite_v1_RefundPaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RefundPayment(argument: _shardwrite_v1_RefundPaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RefundPayment(argument: _shardwrite_v1_RefundPaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  refundPayment(argument: _shardwrite_v1_RefundPaymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  refundPayment(argument: _shardwrite_v1_RefundPaymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  refundPayment(argument: _shardwrite_v1_RefundPaymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  refundPayment(argument: _shardwrite_v1_RefundPaymentRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  RemoveOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RemoveOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RemoveOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  RemoveOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  removeOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  removeOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  removeOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  removeOrderLine(argument: _shardwrite_v1_RemoveOrderLineRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  ShipOrder(argument: _shardwrite_v1_ShipOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ShipOrder(argument: _shardwrite_v1_ShipOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ShipOrder(argument: _shardwrite_v1_ShipOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  ShipOrder(argument: _shardwrite_v1_ShipOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  shipOrder(argument: _shardwrite_v1_ShipOrderRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  shipOrder(argument: _shardwrite_v1_ShipOrderRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  shipOrder(argument: _shardwrite_v1_ShipOrderRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  shipOrder(argument: _shardwrite_v1_ShipOrderRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
  UpdateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  UpdateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  UpdateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  UpdateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  updateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  updateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  updateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  updateShippingAddress(argument: _shardwrite_v1_UpdateShippingAddressRequest, callback: grpc.requestCallback<_shardwrite_v1_CommandResult__Output>): grpc.ClientUnaryCall;
  
}

/**
 * Commands on an order. An order is three aggregates with their own streams
 * (`order-header`, `order-lines`, `order-payment`); all three live on the shard
 * that owns `order_id`.
 * 
 * Every request carries:
 * - `order_id`: the order (1..128 characters from [A-Za-z0-9._:-]);
 * - `command_id`: an optional idempotency key (at most 128 characters). A
 * repeat on the same stream returns the original result with
 * `duplicate = true` and appends nothing;
 * - `expected_version`: if set, the command runs only when the stream is at
 * exactly this version (0 = the stream does not exist yet); otherwise it
 * fails with ABORTED / VERSION_CONFLICT carrying the current version.
 * 
 * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` (domain
 * `shardwrite.dev`) in the `grpc-status-details-bin` trailer.
 */
export interface OrderServiceHandlers extends grpc.UntypedServiceImplementation {
  AddOrderLine: grpc.handleUnaryCall<_shardwrite_v1_AddOrderLineRequest__Output, _shardwrite_v1_CommandResult>;
  
  AddOrderLines: grpc.handleUnaryCall<_shardwrite_v1_AddOrderLinesRequest__Output, _shardwrite_v1_CommandResult>;
  
  AuthorizePayment: grpc.handleUnaryCall<_shardwrite_v1_AuthorizePaymentRequest__Output, _shardwrite_v1_CommandResult>;
  
  CancelOrder: grpc.handleUnaryCall<_shardwrite_v1_CancelOrderRequest__Output, _shardwrite_v1_CommandResult>;
  
  CapturePayment: grpc.handleUnaryCall<_shardwrite_v1_CapturePaymentRequest__Output, _shardwrite_v1_CommandResult>;
  
  MarkPaymentCaptured: grpc.handleUnaryCall<_shardwrite_v1_MarkPaymentCapturedRequest__Output, _shardwrite_v1_CommandResult>;
  
  PlaceOrder: grpc.handleUnaryCall<_shardwrite_v1_PlaceOrderRequest__Output, _shardwrite_v1_CommandResult>;
  
  RefundPayment: grpc.handleUnaryCall<_shardwrite_v1_RefundPaymentRequest__Output, _shardwrite_v1_CommandResult>;
  
  RemoveOrderLine: grpc.handleUnaryCall<_shardwrite_v1_RemoveOrderLineRequest__Output, _shardwrite_v1_CommandResult>;
  
  ShipOrder: grpc.handleUnaryCall<_shardwrite_v1_ShipOrderRequest__Output, _shardwrite_v1_CommandResult>;
  
  UpdateShippingAddress: grpc.handleUnaryCall<_shardwrite_v1_UpdateShippingAddressRequest__Output, _shardwrite_v1_CommandResult>;
  
}

export interface OrderServiceDefinition extends grpc.ServiceDefinition {
  AddOrderLine: MethodDefinition<_shardwrite_v1_AddOrderLineRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_AddOrderLineRequest__Output, _shardwrite_v1_CommandResult__Output>
  AddOrderLines: MethodDefinition<_shardwrite_v1_AddOrderLinesRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_AddOrderLinesRequest__Output, _shardwrite_v1_CommandResult__Output>
  AuthorizePayment: MethodDefinition<_shardwrite_v1_AuthorizePaymentRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_AuthorizePaymentRequest__Output, _shardwrite_v1_CommandResult__Output>
  CancelOrder: MethodDefinition<_shardwrite_v1_CancelOrderRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_CancelOrderRequest__Output, _shardwrite_v1_CommandResult__Output>
  CapturePayment: MethodDefinition<_shardwrite_v1_CapturePaymentRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_CapturePaymentRequest__Output, _shardwrite_v1_CommandResult__Output>
  MarkPaymentCaptured: MethodDefinition<_shardwrite_v1_MarkPaymentCapturedRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_MarkPaymentCapturedRequest__Output, _shardwrite_v1_CommandResult__Output>
  PlaceOrder: MethodDefinition<_shardwrite_v1_PlaceOrderRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_PlaceOrderRequest__Output, _shardwrite_v1_CommandResult__Output>
  RefundPayment: MethodDefinition<_shardwrite_v1_RefundPaymentRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_RefundPaymentRequest__Output, _shardwrite_v1_CommandResult__Output>
  RemoveOrderLine: MethodDefinition<_shardwrite_v1_RemoveOrderLineRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_RemoveOrderLineRequest__Output, _shardwrite_v1_CommandResult__Output>
  ShipOrder: MethodDefinition<_shardwrite_v1_ShipOrderRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_ShipOrderRequest__Output, _shardwrite_v1_CommandResult__Output>
  UpdateShippingAddress: MethodDefinition<_shardwrite_v1_UpdateShippingAddressRequest, _shardwrite_v1_CommandResult, _shardwrite_v1_UpdateShippingAddressRequest__Output, _shardwrite_v1_CommandResult__Output>
}

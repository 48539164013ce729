// Original file: proto/shardwrite/v1/command_stream.proto

import type { PlaceOrderRequest as _shardwrite_v1_PlaceOrderRequest, PlaceOrderRequest__Output as _shardwrite_v1_PlaceOrderRequest__Output } from '../../shardwrite/v1/PlaceOrderRequest.js';
import type { UpdateShippingAddressRequest as _shardwrite_v1_UpdateShippingAddressRequest, UpdateShippingAddressRequest__Output as _shardwrite_v1_UpdateShippingAddressRequest__Output } from '../../shardwrite/v1/UpdateShippingAddressRequest.js';
import type { ShipOrderRequest as _shardwrite_v1_ShipOrderRequest, ShipOrderRequest__Output as _shardwrite_v1_ShipOrderRequest__Output } from '../../shardwrite/v1/ShipOrderRequest.js';
import type { CancelOrderRequest as _shardwrite_v1_CancelOrderRequest, CancelOrderRequest__Output as _shardwrite_v1_CancelOrderRequest__Output } from '../../shardwrite/v1/CancelOrderRequest.js';
import type { AddOrderLineRequest as _shardwrite_v1_AddOrderLineRequest, AddOrderLineRequest__Output as _shardwrite_v1_AddOrderLineRequest__Output } from '../../shardwrite/v1/AddOrderLineRequest.js';
import type { RemoveOrderLineRequest as _shardwrite_v1_RemoveOrderLineRequest, RemoveOrderLineRequest__Output as _shardwrite_v1_RemoveOrderLineRequest__Output } from '../../shardwrite/v1/RemoveOrderLineRequest.js';
import type { AuthorizePaymentRequest as _shardwrite_v1_AuthorizePaymentRequest, AuthorizePaymentRequest__Output as _shardwrite_v1_AuthorizePaymentRequest__Output } from '../../shardwrite/v1/AuthorizePaymentRequest.js';
import type { CapturePaymentRequest as _shardwrite_v1_CapturePaymentRequest, CapturePaymentRequest__Output as _shardwrite_v1_CapturePaymentRequest__Output } from '../../shardwrite/v1/CapturePaymentRequest.js';
import type { MarkPaymentCapturedRequest as _shardwrite_v1_MarkPaymentCapturedRequest, MarkPaymentCapturedRequest__Output as _shardwrite_v1_MarkPaymentCapturedRequest__Output } from '../../shardwrite/v1/MarkPaymentCapturedRequest.js';
import type { RefundPaymentRequest as _shardwrite_v1_RefundPaymentRequest, RefundPaymentRequest__Output as _shardwrite_v1_RefundPaymentRequest__Output } from '../../shardwrite/v1/RefundPaymentRequest.js';
import type { RecordProcessInputRequest as _shardwrite_v1_RecordProcessInputRequest, RecordProcessInputRequest__Output as _shardwrite_v1_RecordProcessInputRequest__Output } from '../../shardwrite/v1/RecordProcessInputRequest.js';
import type { CompleteProcessStepRequest as _shardwrite_v1_CompleteProcessStepRequest, CompleteProcessStepRequest__Output as _shardwrite_v1_CompleteProcessStepRequest__Output } from '../../shardwrite/v1/CompleteProcessStepRequest.js';
import type { RetryProcessRequest as _shardwrite_v1_RetryProcessRequest, RetryProcessRequest__Output as _shardwrite_v1_RetryProcessRequest__Output } from '../../shardwrite/v1/RetryProcessRequest.js';
import type { AddOrderLinesRequest as _shardwrite_v1_AddOrderLinesRequest, AddOrderLinesRequest__Output as _shardwrite_v1_AddOrderLinesRequest__Output } from '../../shardwrite/v1/AddOrderLinesRequest.js';
import type { Any as _google_protobuf_Any, Any__Output as _google_protobuf_Any__Output } from '../../google/protobuf/Any.js';

export interface StreamedCommand {
  /**
   * Chosen by the caller; echoed in the outcome. Unique among the caller's
   * commands in flight on this stream.
   */
  'requestId'?: (string);
  'placeOrder'?: (_shardwrite_v1_PlaceOrderRequest | null);
  'updateShippingAddress'?: (_shardwrite_v1_UpdateShippingAddressRequest | null);
  'shipOrder'?: (_shardwrite_v1_ShipOrderRequest | null);
  'cancelOrder'?: (_shardwrite_v1_CancelOrderRequest | null);
  'addOrderLine'?: (_shardwrite_v1_AddOrderLineRequest | null);
  'removeOrderLine'?: (_shardwrite_v1_RemoveOrderLineRequest | null);
  'authorizePayment'?: (_shardwrite_v1_AuthorizePaymentRequest | null);
  'capturePayment'?: (_shardwrite_v1_CapturePaymentRequest | null);
  'markPaymentCaptured'?: (_shardwrite_v1_MarkPaymentCapturedRequest | null);
  'refundPayment'?: (_shardwrite_v1_RefundPaymentRequest | null);
  'recordProcessInput'?: (_shardwrite_v1_RecordProcessInputRequest | null);
  'completeProcessStep'?: (_shardwrite_v1_CompleteProcessStepRequest | null);
  'retryProcess'?: (_shardwrite_v1_RetryProcessRequest | null);
  /**
   * Optional per-command deadline, in milliseconds from when the service
   * receives the command (0 = only the stream's own deadline applies).
   */
  'timeoutMs'?: (number);
  /**
   * 15 is timeout_ms.
   */
  'addOrderLines'?: (_shardwrite_v1_AddOrderLinesRequest | null);
  /**
   * Any command of any command service, its request packed: `type_url` is
   * "type.googleapis.com/<request message>" (e.g.
   * "type.googleapis.com/shardwrite.v1.ReserveStockRequest") and `value`
   * the encoded request. Every command may be sent this way; a command
   * service with no member above (every one added after this field) is
   * streamed only this way, so adding a command service changes nothing in
   * this file. The members above stay, with their numbers, for existing
   * callers. An unknown type, or a `value` that does not decode as it, is
   * INVALID_ARGUMENT.
   */
  'packed'?: (_google_protobuf_Any | null);
  'command'?: "placeOrder"|"updateShippingAddress"|"shipOrder"|"cancelOrder"|"addOrderLine"|"removeOrderLine"|"authorizePayment"|"capturePayment"|"markPaymentCaptured"|"refundPayment"|"recordProcessInput"|"completeProcessStep"|"retryProcess"|"addOrderLines"|"packed";
}

export interface StreamedCommand__Output {
  /**
   * Chosen by the caller; echoed in the outcome. Unique among the caller's
   * commands in flight on this stream.
   */
  'requestId': (string);
  'placeOrder'?: (_shardwrite_v1_PlaceOrderRequest__Output | null);
  'updateShippingAddress'?: (_shardwrite_v1_UpdateShippingAddressRequest__Output | null);
  'shipOrder'?: (_shardwrite_v1_ShipOrderRequest__Output | null);
  'cancelOrder'?: (_shardwrite_v1_CancelOrderRequest__Output | null);
  'addOrderLine'?: (_shardwrite_v1_AddOrderLineRequest__Output | null);
  'removeOrderLine'?: (_shardwrite_v1_RemoveOrderLineRequest__Output | null);
  'authorizePayment'?: (_shardwrite_v1_AuthorizePaymentRequest__Output | null);
  'capturePayment'?: (_shardwrite_v1_CapturePaymentRequest__Output | null);
  'markPaymentCaptured'?: (_shardwrite_v1_MarkPaymentCapturedRequest__Output | null);
  'refundPayment'?: (_shardwrite_v1_RefundPaymentRequest__Output | null);
  'recordProcessInput'?: (_shardwrite_v1_RecordProcessInputRequest__Output | null);
  'completeProcessStep'?: (_shardwrite_v1_CompleteProcessStepRequest__Output | null);
  'retryProcess'?: (_shardwrite_v1_RetryProcessRequest__Output | null);
  /**
   * Optional per-command deadline, in milliseconds from when the service
   * receives the command (0 = only the stream's own deadline applies).
   */
  'timeoutMs': (number);
  /**
   * 15 is timeout_ms.
   */
  'addOrderLines'?: (_shardwrite_v1_AddOrderLinesRequest__Output | null);
  /**
   * Any command of any command service, its request packed: `type_url` is
   * "type.googleapis.com/<request message>" (e.g.
   * "type.googleapis.com/shardwrite.v1.ReserveStockRequest") and `value`
   * the encoded request. Every command may be sent this way; a command
   * service with no member above (every one added after this field) is
   * streamed only this way, so adding a command service changes nothing in
   * this file. The members above stay, with their numbers, for existing
   * callers. An unknown type, or a `value` that does not decode as it, is
   * INVALID_ARGUMENT.
   */
  'packed'?: (_google_protobuf_Any__Output | null);
  'command'?: "placeOrder"|"updateShippingAddress"|"shipOrder"|"cancelOrder"|"addOrderLine"|"removeOrderLine"|"authorizePayment"|"capturePayment"|"markPaymentCaptured"|"refundPayment"|"recordProcessInput"|"completeProcessStep"|"retryProcess"|"addOrderLines"|"packed";
}

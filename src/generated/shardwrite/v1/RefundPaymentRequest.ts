// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-payment: refunds everything captured, once. Refused when nothing was
 * captured or the payment was already refunded.
 */
export interface RefundPaymentRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'reason'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-payment: refunds everything captured, once. Refused when nothing was
 * captured or the payment was already refunded.
 */
export interface RefundPaymentRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'reason': (string);
  '_expectedVersion'?: "expectedVersion";
}

// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-payment: captures at most the authorized amount, in total.
 */
export interface CapturePaymentRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'amountCents'?: (number | string | Long);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-payment: captures at most the authorized amount, in total.
 */
export interface CapturePaymentRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'amountCents': (string);
  '_expectedVersion'?: "expectedVersion";
}

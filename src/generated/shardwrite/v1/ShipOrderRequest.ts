// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-header: ships a placed order once, and only after the header was told
 * that its payment was captured (MarkPaymentCaptured); otherwise
 * FAILED_PRECONDITION / BUSINESS_RULE.
 */
export interface ShipOrderRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'carrier'?: (string);
  'trackingNumber'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-header: ships a placed order once, and only after the header was told
 * that its payment was captured (MarkPaymentCaptured); otherwise
 * FAILED_PRECONDITION / BUSINESS_RULE.
 */
export interface ShipOrderRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'carrier': (string);
  'trackingNumber': (string);
  '_expectedVersion'?: "expectedVersion";
}

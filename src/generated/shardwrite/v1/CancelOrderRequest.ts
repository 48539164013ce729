// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-header: cancels a placed order that has not shipped.
 */
export interface CancelOrderRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'reason'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-header: cancels a placed order that has not shipped.
 */
export interface CancelOrderRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'reason': (string);
  '_expectedVersion'?: "expectedVersion";
}

// Original file: proto/shardwrite/v1/inventory.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Releases the whole reservation the order holds (it becomes available
 * again); refused when the order holds none.
 */
export interface ReleaseReservationRequest {
  'sku'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'orderId'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Releases the whole reservation the order holds (it becomes available
 * again); refused when the order holds none.
 */
export interface ReleaseReservationRequest__Output {
  'sku': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'orderId': (string);
  '_expectedVersion'?: "expectedVersion";
}

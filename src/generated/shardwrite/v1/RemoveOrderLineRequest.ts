// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-lines: the line must exist.
 */
export interface RemoveOrderLineRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'lineId'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-lines: the line must exist.
 */
export interface RemoveOrderLineRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'lineId': (string);
  '_expectedVersion'?: "expectedVersion";
}

// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-lines: at most 100 lines, unique `line_id`, quantity 1..10000, price >= 0.
 */
export interface AddOrderLineRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'lineId'?: (string);
  'sku'?: (string);
  'quantity'?: (number);
  'unitPriceCents'?: (number | string | Long);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-lines: at most 100 lines, unique `line_id`, quantity 1..10000, price >= 0.
 */
export interface AddOrderLineRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'lineId': (string);
  'sku': (string);
  'quantity': (number);
  'unitPriceCents': (string);
  '_expectedVersion'?: "expectedVersion";
}

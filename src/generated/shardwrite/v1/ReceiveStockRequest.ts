// Original file: proto/shardwrite/v1/inventory.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Adds 1..1000000 units to the SKU's stock; creates the SKU. `command_id` is
 * required (a retried receipt must never count twice). Refused past
 * 1000000000 units on hand.
 */
export interface ReceiveStockRequest {
  'sku'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'quantity'?: (number);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Adds 1..1000000 units to the SKU's stock; creates the SKU. `command_id` is
 * required (a retried receipt must never count twice). Refused past
 * 1000000000 units on hand.
 */
export interface ReceiveStockRequest__Output {
  'sku': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'quantity': (number);
  '_expectedVersion'?: "expectedVersion";
}

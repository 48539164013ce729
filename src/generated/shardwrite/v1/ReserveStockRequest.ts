// Original file: proto/shardwrite/v1/inventory.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Reserves 1..1000000 units for an order: at most what is available, one
 * reservation per order and SKU, at most 1000 active reservations per SKU.
 * NOT_FOUND when the SKU never received stock.
 */
export interface ReserveStockRequest {
  'sku'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'orderId'?: (string);
  'quantity'?: (number);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Reserves 1..1000000 units for an order: at most what is available, one
 * reservation per order and SKU, at most 1000 active reservations per SKU.
 * NOT_FOUND when the SKU never received stock.
 */
export interface ReserveStockRequest__Output {
  'sku': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'orderId': (string);
  'quantity': (number);
  '_expectedVersion'?: "expectedVersion";
}

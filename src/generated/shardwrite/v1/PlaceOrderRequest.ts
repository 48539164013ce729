// Original file: proto/shardwrite/v1/orders.proto

import type { Address as _shardwrite_v1_Address, Address__Output as _shardwrite_v1_Address__Output } from '../../shardwrite/v1/Address.js';
import type { Long } from '@grpc/proto-loader';

/**
 * order-header: places the order. Fails with FAILED_PRECONDITION if it exists.
 */
export interface PlaceOrderRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'customerId'?: (string);
  'customerEmail'?: (string);
  'shippingAddress'?: (_shardwrite_v1_Address | null);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-header: places the order. Fails with FAILED_PRECONDITION if it exists.
 */
export interface PlaceOrderRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'customerId': (string);
  'customerEmail': (string);
  'shippingAddress': (_shardwrite_v1_Address__Output | null);
  '_expectedVersion'?: "expectedVersion";
}

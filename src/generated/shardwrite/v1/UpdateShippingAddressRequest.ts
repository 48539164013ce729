// Original file: proto/shardwrite/v1/orders.proto

import type { Address as _shardwrite_v1_Address, Address__Output as _shardwrite_v1_Address__Output } from '../../shardwrite/v1/Address.js';
import type { Long } from '@grpc/proto-loader';

/**
 * order-header: only while the order is placed (not shipped or cancelled).
 */
export interface UpdateShippingAddressRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'shippingAddress'?: (_shardwrite_v1_Address | null);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-header: only while the order is placed (not shipped or cancelled).
 */
export interface UpdateShippingAddressRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'shippingAddress': (_shardwrite_v1_Address__Output | null);
  '_expectedVersion'?: "expectedVersion";
}

// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-payment: authorizes once, for a positive amount in an ISO 4217 currency.
 */
export interface AuthorizePaymentRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'amountCents'?: (number | string | Long);
  'currency'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-payment: authorizes once, for a positive amount in an ISO 4217 currency.
 */
export interface AuthorizePaymentRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'amountCents': (string);
  'currency': (string);
  '_expectedVersion'?: "expectedVersion";
}

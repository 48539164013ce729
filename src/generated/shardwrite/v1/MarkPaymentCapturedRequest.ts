// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * order-header: records that the order's payment was captured, which is what
 * lets ShipOrder through. Sent by the order-fulfilment process manager when it
 * sees PaymentCaptured on the order's payment; refused when already recorded.
 * Allowed on a cancelled order (the fact stays true), not on a shipped one.
 */
export interface MarkPaymentCapturedRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'amountCents'?: (number | string | Long);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-header: records that the order's payment was captured, which is what
 * lets ShipOrder through. Sent by the order-fulfilment process manager when it
 * sees PaymentCaptured on the order's payment; refused when already recorded.
 * Allowed on a cancelled order (the fact stays true), not on a shipped one.
 */
export interface MarkPaymentCapturedRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'amountCents': (string);
  '_expectedVersion'?: "expectedVersion";
}

// Original file: proto/shardwrite/v1/orders.proto

import type { NewOrderLine as _shardwrite_v1_NewOrderLine, NewOrderLine__Output as _shardwrite_v1_NewOrderLine__Output } from '../../shardwrite/v1/NewOrderLine.js';
import type { Long } from '@grpc/proto-loader';

/**
 * order-lines: adds 1..20 lines at once, one OrderLineAdded event per line, in
 * the request's order, appended together or not at all. Each line follows the
 * AddOrderLine rules; line ids are unique within the request and among the
 * order's lines, and the order holds at most 100 lines afterwards. One line
 * that breaks a rule refuses the whole command (FAILED_PRECONDITION /
 * BUSINESS_RULE, or INVALID_ARGUMENT naming `lines[i].field`).
 */
export interface AddOrderLinesRequest {
  'orderId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'lines'?: (_shardwrite_v1_NewOrderLine)[];
  '_expectedVersion'?: "expectedVersion";
}

/**
 * order-lines: adds 1..20 lines at once, one OrderLineAdded event per line, in
 * the request's order, appended together or not at all. Each line follows the
 * AddOrderLine rules; line ids are unique within the request and among the
 * order's lines, and the order holds at most 100 lines afterwards. One line
 * that breaks a rule refuses the whole command (FAILED_PRECONDITION /
 * BUSINESS_RULE, or INVALID_ARGUMENT naming `lines[i].field`).
 */
export interface AddOrderLinesRequest__Output {
  'orderId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'lines': (_shardwrite_v1_NewOrderLine__Output)[];
  '_expectedVersion'?: "expectedVersion";
}

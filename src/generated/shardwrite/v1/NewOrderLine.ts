// Original file: proto/shardwrite/v1/orders.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One line of AddOrderLinesRequest; the same rules as AddOrderLineRequest.
 */
export interface NewOrderLine {
  'lineId'?: (string);
  'sku'?: (string);
  'quantity'?: (number);
  'unitPriceCents'?: (number | string | Long);
}

/**
 * One line of AddOrderLinesRequest; the same rules as AddOrderLineRequest.
 */
export interface NewOrderLine__Output {
  'lineId': (string);
  'sku': (string);
  'quantity': (number);
  'unitPriceCents': (string);
}

// Original file: proto/shardwrite/v1/events.proto

import type { Long } from '@grpc/proto-loader';

export interface ReadStreamRequest {
  /**
   * "order-header", "order-lines" or "order-payment".
   */
  'aggregateType'?: (string);
  'aggregateId'?: (string);
  'fromVersion'?: (number | string | Long);
}

export interface ReadStreamRequest__Output {
  /**
   * "order-header", "order-lines" or "order-payment".
   */
  'aggregateType': (string);
  'aggregateId': (string);
  'fromVersion': (string);
}

// Original file: proto/shardwrite/v1/ring.proto

import type { Long } from '@grpc/proto-loader';

export interface GetRingRequest {
  /**
   * Wait for this epoch or a newer one (0 = answer at once): the epoch a
   * WRONG_SHARD or STREAM_MOVING error reported.
   */
  'minEpoch'?: (number | string | Long);
}

export interface GetRingRequest__Output {
  /**
   * Wait for this epoch or a newer one (0 = answer at once): the epoch a
   * WRONG_SHARD or STREAM_MOVING error reported.
   */
  'minEpoch': (string);
}

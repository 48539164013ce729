// Original file: proto/shardwrite/v1/ring.proto

import type { RingShard as _shardwrite_v1_RingShard, RingShard__Output as _shardwrite_v1_RingShard__Output } from '../../shardwrite/v1/RingShard.js';
import type { Long } from '@grpc/proto-loader';

export interface Ring {
  /**
   * Starts at 1; every published change takes the next one.
   */
  'epoch'?: (number | string | Long);
  /**
   * In ring order: the order matters to the hashing (RING.md).
   */
  'shards'?: (_shardwrite_v1_RingShard)[];
  /**
   * The hashing the owners are computed with, as RING.md names it
   * (`hashring-ketama-md5-v1`): a client that does not know the name must not
   * compute owners (send through a router instead).
   */
  'hashing'?: (string);
}

export interface Ring__Output {
  /**
   * Starts at 1; every published change takes the next one.
   */
  'epoch': (string);
  /**
   * In ring order: the order matters to the hashing (RING.md).
   */
  'shards': (_shardwrite_v1_RingShard__Output)[];
  /**
   * The hashing the owners are computed with, as RING.md names it
   * (`hashring-ketama-md5-v1`): a client that does not know the name must not
   * compute owners (send through a router instead).
   */
  'hashing': (string);
}

// Original file: proto/google/rpc/status.proto

import type { Any as _google_protobuf_Any, Any__Output as _google_protobuf_Any__Output } from '../../google/protobuf/Any.js';

/**
 * The `Status` type defines a logical error model. It is carried in the
 * `grpc-status-details-bin` trailer.
 */
export interface Status {
  'code'?: (number);
  'message'?: (string);
  'details'?: (_google_protobuf_Any)[];
}

/**
 * The `Status` type defines a logical error model. It is carried in the
 * `grpc-status-details-bin` trailer.
 */
export interface Status__Output {
  'code': (number);
  'message': (string);
  'details': (_google_protobuf_Any__Output)[];
}

// Original file: proto/shardwrite/v1/data_subjects.proto

import type { Long } from '@grpc/proto-loader';

export interface DataSubjectResult {
  'subjectId'?: (string);
  /**
   * The version of the stream `data-subject-<subject_id>` afterwards.
   */
  'version'?: (number | string | Long);
  /**
   * False when the subject already was in the state asked for.
   */
  'changed'?: (boolean);
  /**
   * Whether the subject is erased now.
   */
  'erased'?: (boolean);
}

export interface DataSubjectResult__Output {
  'subjectId': (string);
  /**
   * The version of the stream `data-subject-<subject_id>` afterwards.
   */
  'version': (string);
  /**
   * False when the subject already was in the state asked for.
   */
  'changed': (boolean);
  /**
   * Whether the subject is erased now.
   */
  'erased': (boolean);
}

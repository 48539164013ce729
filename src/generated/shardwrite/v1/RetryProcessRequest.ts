// Original file: proto/shardwrite/v1/process_managers.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Resumes a parked instance: its failed step is decided again (same command
 * ids, so what was applied is not applied twice), then the inputs recorded
 * while it was parked are applied in order.
 */
export interface RetryProcessRequest {
  'instanceId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'processManager'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Resumes a parked instance: its failed step is decided again (same command
 * ids, so what was applied is not applied twice), then the inputs recorded
 * while it was parked are applied in order.
 */
export interface RetryProcessRequest__Output {
  'instanceId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'processManager': (string);
  '_expectedVersion'?: "expectedVersion";
}

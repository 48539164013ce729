// Original file: proto/shardwrite/v1/process_managers.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Tells the instance that the commands of step `step` (attempt `attempt`)
 * were all applied, or, with `failure` set, that one was refused for good:
 * the instance is then parked. Refused (BUSINESS_RULE) when that step is not
 * the one in flight.
 */
export interface CompleteProcessStepRequest {
  'instanceId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  'processManager'?: (string);
  'step'?: (number | string | Long);
  'attempt'?: (number | string | Long);
  'failure'?: (string);
  /**
   * Commands of the step refused by a business rule the process manager
   * tolerates (their index in the step), fed back to it as inputs.
   */
  'rejected'?: (number)[];
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Tells the instance that the commands of step `step` (attempt `attempt`)
 * were all applied, or, with `failure` set, that one was refused for good:
 * the instance is then parked. Refused (BUSINESS_RULE) when that step is not
 * the one in flight.
 */
export interface CompleteProcessStepRequest__Output {
  'instanceId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  'processManager': (string);
  'step': (string);
  'attempt': (string);
  'failure': (string);
  /**
   * Commands of the step refused by a business rule the process manager
   * tolerates (their index in the step), fed back to it as inputs.
   */
  'rejected': (number)[];
  '_expectedVersion'?: "expectedVersion";
}

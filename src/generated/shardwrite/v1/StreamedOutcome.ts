// Original file: proto/shardwrite/v1/command_stream.proto

import type { CommandResult as _shardwrite_v1_CommandResult, CommandResult__Output as _shardwrite_v1_CommandResult__Output } from '../../shardwrite/v1/CommandResult.js';
import type { Status as _google_rpc_Status, Status__Output as _google_rpc_Status__Output } from '../../google/rpc/Status.js';

export interface StreamedOutcome {
  'requestId'?: (string);
  'result'?: (_shardwrite_v1_CommandResult | null);
  /**
   * The same codes and ErrorInfo reasons as the unary API.
   */
  'error'?: (_google_rpc_Status | null);
  'outcome'?: "result"|"error";
}

export interface StreamedOutcome__Output {
  'requestId': (string);
  'result'?: (_shardwrite_v1_CommandResult__Output | null);
  /**
   * The same codes and ErrorInfo reasons as the unary API.
   */
  'error'?: (_google_rpc_Status__Output | null);
  'outcome'?: "result"|"error";
}

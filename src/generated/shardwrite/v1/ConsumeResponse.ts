// Original file: proto/shardwrite/v1/subscriptions.proto

import type { GroupEvent as _shardwrite_v1_GroupEvent, GroupEvent__Output as _shardwrite_v1_GroupEvent__Output } from '../../shardwrite/v1/GroupEvent.js';
import type { Assignment as _shardwrite_v1_Assignment, Assignment__Output as _shardwrite_v1_Assignment__Output } from '../../shardwrite/v1/Assignment.js';

export interface ConsumeResponse {
  'event'?: (_shardwrite_v1_GroupEvent | null);
  'assignment'?: (_shardwrite_v1_Assignment | null);
  'kind'?: "event"|"assignment";
}

export interface ConsumeResponse__Output {
  'event'?: (_shardwrite_v1_GroupEvent__Output | null);
  'assignment'?: (_shardwrite_v1_Assignment__Output | null);
  'kind'?: "event"|"assignment";
}

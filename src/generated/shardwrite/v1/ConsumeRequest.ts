// Original file: proto/shardwrite/v1/subscriptions.proto

import type { JoinGroup as _shardwrite_v1_JoinGroup, JoinGroup__Output as _shardwrite_v1_JoinGroup__Output } from '../../shardwrite/v1/JoinGroup.js';
import type { Ack as _shardwrite_v1_Ack, Ack__Output as _shardwrite_v1_Ack__Output } from '../../shardwrite/v1/Ack.js';

export interface ConsumeRequest {
  'join'?: (_shardwrite_v1_JoinGroup | null);
  'ack'?: (_shardwrite_v1_Ack | null);
  'kind'?: "join"|"ack";
}

export interface ConsumeRequest__Output {
  'join'?: (_shardwrite_v1_JoinGroup__Output | null);
  'ack'?: (_shardwrite_v1_Ack__Output | null);
  'kind'?: "join"|"ack";
}

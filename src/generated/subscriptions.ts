import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.js';
import type { Ack as _shardwrite_v1_Ack, Ack__Output as _shardwrite_v1_Ack__Output } from './shardwrite/v1/Ack.js';
import type { Assignment as _shardwrite_v1_Assignment, Assignment__Output as _shardwrite_v1_Assignment__Output } from './shardwrite/v1/Assignment.js';
import type { CaughtUp as _shardwrite_v1_CaughtUp, CaughtUp__Output as _shardwrite_v1_CaughtUp__Output } from './shardwrite/v1/CaughtUp.js';
import type { ConsumeRequest as _shardwrite_v1_ConsumeRequest, ConsumeRequest__Output as _shardwrite_v1_ConsumeRequest__Output } from './shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse as _shardwrite_v1_ConsumeResponse, ConsumeResponse__Output as _shardwrite_v1_ConsumeResponse__Output } from './shardwrite/v1/ConsumeResponse.js';
import type { ConsumerGroupServiceClient as _shardwrite_v1_ConsumerGroupServiceClient, ConsumerGroupServiceDefinition as _shardwrite_v1_ConsumerGroupServiceDefinition } from './shardwrite/v1/ConsumerGroupService.js';
import type { EventBatch as _shardwrite_v1_EventBatch, EventBatch__Output as _shardwrite_v1_EventBatch__Output } from './shardwrite/v1/EventBatch.js';
import type { FellBehind as _shardwrite_v1_FellBehind, FellBehind__Output as _shardwrite_v1_FellBehind__Output } from './shardwrite/v1/FellBehind.js';
import type { GroupEvent as _shardwrite_v1_GroupEvent, GroupEvent__Output as _shardwrite_v1_GroupEvent__Output } from './shardwrite/v1/GroupEvent.js';
import type { JoinGroup as _shardwrite_v1_JoinGroup, JoinGroup__Output as _shardwrite_v1_JoinGroup__Output } from './shardwrite/v1/JoinGroup.js';
import type { SubscribeRequest as _shardwrite_v1_SubscribeRequest, SubscribeRequest__Output as _shardwrite_v1_SubscribeRequest__Output } from './shardwrite/v1/SubscribeRequest.js';
import type { SubscribeResponse as _shardwrite_v1_SubscribeResponse, SubscribeResponse__Output as _shardwrite_v1_SubscribeResponse__Output } from './shardwrite/v1/SubscribeResponse.js';
import type { SubscribedEvent as _shardwrite_v1_SubscribedEvent, SubscribedEvent__Output as _shardwrite_v1_SubscribedEvent__Output } from './shardwrite/v1/SubscribedEvent.js';
import type { SubscriptionServiceClient as _shardwrite_v1_SubscriptionServiceClient, SubscriptionServiceDefinition as _shardwrite_v1_SubscriptionServiceDefinition } from './shardwrite/v1/SubscriptionService.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  shardwrite: {
    v1: {
      Ack: MessageTypeDefinition<_shardwrite_v1_Ack, _shardwrite_v1_Ack__Output>
      Assignment: MessageTypeDefinition<_shardwrite_v1_Assignment, _shardwrite_v1_Assignment__Output>
      CaughtUp: MessageTypeDefinition<_shardwrite_v1_CaughtUp, _shardwrite_v1_CaughtUp__Output>
      ConsumeRequest: MessageTypeDefinition<_shardwrite_v1_ConsumeRequest, _shardwrite_v1_ConsumeRequest__Output>
      ConsumeResponse: MessageTypeDefinition<_shardwrite_v1_ConsumeResponse, _shardwrite_v1_ConsumeResponse__Output>
      /**
       * Durable consumer groups: the service keeps each group's checkpoints. A
       * group's events are split into partitions by stream id (every event of a
       * stream is in the same partition); each partition is leased to one member
       * at a time and delivered to it in order. Members that join or leave (or
       * whose connection dies) get partitions reassigned; a partition resumes
       * after its last acknowledgement, so a redelivery only ever happens after a
       * member or a connection failed — never because a shard was added or
       * removed.
       */
      ConsumerGroupService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_ConsumerGroupServiceClient> & { service: _shardwrite_v1_ConsumerGroupServiceDefinition }
      EventBatch: MessageTypeDefinition<_shardwrite_v1_EventBatch, _shardwrite_v1_EventBatch__Output>
      FellBehind: MessageTypeDefinition<_shardwrite_v1_FellBehind, _shardwrite_v1_FellBehind__Output>
      GroupEvent: MessageTypeDefinition<_shardwrite_v1_GroupEvent, _shardwrite_v1_GroupEvent__Output>
      JoinGroup: MessageTypeDefinition<_shardwrite_v1_JoinGroup, _shardwrite_v1_JoinGroup__Output>
      SubscribeRequest: MessageTypeDefinition<_shardwrite_v1_SubscribeRequest, _shardwrite_v1_SubscribeRequest__Output>
      SubscribeResponse: MessageTypeDefinition<_shardwrite_v1_SubscribeResponse, _shardwrite_v1_SubscribeResponse__Output>
      SubscribedEvent: MessageTypeDefinition<_shardwrite_v1_SubscribedEvent, _shardwrite_v1_SubscribedEvent__Output>
      /**
       * Follows what the event store commits. Served by the router (one
       * subscription covers every shard, merged) and by each shard (it covers that
       * shard's own events).
       * 
       * Guarantees:
       * - Nothing is skipped: a subscription only passes a shard position below
       * which no event can still become visible (PostgreSQL transaction ids, not
       * sequence numbers, decide what is safe to pass).
       * - Each stream's events arrive in version order, contiguous, also while a
       * rebalance moves the stream to another shard; events copied by a move are
       * never delivered a second time (an event is delivered from the shard that
       * first committed it, and `event_id` stays the same).
       * - Events of different streams have no global order across shards.
       */
      SubscriptionService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_SubscriptionServiceClient> & { service: _shardwrite_v1_SubscriptionServiceDefinition }
    }
  }
}


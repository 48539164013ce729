import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Barrier as _shardwrite_internal_v1_Barrier, Barrier__Output as _shardwrite_internal_v1_Barrier__Output } from './shardwrite/internal/v1/Barrier.js';
import type { EncodedEvent as _shardwrite_internal_v1_EncodedEvent, EncodedEvent__Output as _shardwrite_internal_v1_EncodedEvent__Output } from './shardwrite/internal/v1/EncodedEvent.js';
import type { FeedBatch as _shardwrite_internal_v1_FeedBatch, FeedBatch__Output as _shardwrite_internal_v1_FeedBatch__Output } from './shardwrite/internal/v1/FeedBatch.js';
import type { FeedItem as _shardwrite_internal_v1_FeedItem, FeedItem__Output as _shardwrite_internal_v1_FeedItem__Output } from './shardwrite/internal/v1/FeedItem.js';
import type { FollowRequest as _shardwrite_internal_v1_FollowRequest, FollowRequest__Output as _shardwrite_internal_v1_FollowRequest__Output } from './shardwrite/internal/v1/FollowRequest.js';
import type { ShardFeedClient as _shardwrite_internal_v1_ShardFeedClient, ShardFeedDefinition as _shardwrite_internal_v1_ShardFeedDefinition } from './shardwrite/internal/v1/ShardFeed.js';
import type { Start as _shardwrite_internal_v1_Start, Start__Output as _shardwrite_internal_v1_Start__Output } from './shardwrite/internal/v1/Start.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  shardwrite: {
    internal: {
      v1: {
        Barrier: MessageTypeDefinition<_shardwrite_internal_v1_Barrier, _shardwrite_internal_v1_Barrier__Output>
        EncodedEvent: MessageTypeDefinition<_shardwrite_internal_v1_EncodedEvent, _shardwrite_internal_v1_EncodedEvent__Output>
        FeedBatch: MessageTypeDefinition<_shardwrite_internal_v1_FeedBatch, _shardwrite_internal_v1_FeedBatch__Output>
        FeedItem: MessageTypeDefinition<_shardwrite_internal_v1_FeedItem, _shardwrite_internal_v1_FeedItem__Output>
        FollowRequest: MessageTypeDefinition<_shardwrite_internal_v1_FollowRequest, _shardwrite_internal_v1_FollowRequest__Output>
        ShardFeed: SubtypeConstructor<typeof grpc.Client, _shardwrite_internal_v1_ShardFeedClient> & { service: _shardwrite_internal_v1_ShardFeedDefinition }
        Start: MessageTypeDefinition<_shardwrite_internal_v1_Start, _shardwrite_internal_v1_Start__Output>
      }
    }
  }
}


// Original file: proto/shardwrite/internal/v1/shard_feed.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { FeedItem as _shardwrite_internal_v1_FeedItem, FeedItem__Output as _shardwrite_internal_v1_FeedItem__Output } from '../../../shardwrite/internal/v1/FeedItem.js';
import type { FollowRequest as _shardwrite_internal_v1_FollowRequest, FollowRequest__Output as _shardwrite_internal_v1_FollowRequest__Output } from '../../../shardwrite/internal/v1/FollowRequest.js';

export interface ShardFeedClient extends grpc.Client {
  Follow(argument: _shardwrite_internal_v1_FollowRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedItem__Output>;
  Follow(argument: _shardwrite_internal_v1_FollowRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedItem__Output>;
  follow(argument: _shardwrite_internal_v1_FollowRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedItem__Output>;
  follow(argument: _shardwrite_internal_v1_FollowRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedItem__Output>;
  
}

export interface ShardFeedHandlers extends grpc.UntypedServiceImplementation {
  Follow: grpc.handleServerStreamingCall<_shardwrite_internal_v1_FollowRequest__Output, _shardwrite_internal_v1_FeedItem>;
  
}

export interface ShardFeedDefinition extends grpc.ServiceDefinition {
  Follow: MethodDefinition<_shardwrite_internal_v1_FollowRequest, _shardwrite_internal_v1_FeedItem, _shardwrite_internal_v1_FollowRequest__Output, _shardwrite_internal_v1_FeedItem__Output>
}

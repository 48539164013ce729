// Original file: proto/shardwrite/internal/v1/shard_feed.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { FeedBatch as _shardwrite_internal_v1_FeedBatch, FeedBatch__Output as _shardwrite_internal_v1_FeedBatch__Output } from '../../../shardwrite/internal/v1/FeedBatch.js';
import type { FollowRequest as _shardwrite_internal_v1_FollowRequest, FollowRequest__Output as _shardwrite_internal_v1_FollowRequest__Output } from '../../../shardwrite/internal/v1/FollowRequest.js';

export interface ShardFeedClient extends grpc.Client {
  /**
   * The shard's feed from `after`: catch-up from the store, then live. Items
   * travel in batches (a page of the store, or what the live tail had), so
   * gRPC's per-message cost is paid per batch.
   */
  Follow(argument: _shardwrite_internal_v1_FollowRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedBatch__Output>;
  Follow(argument: _shardwrite_internal_v1_FollowRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedBatch__Output>;
  /**
   * The shard's feed from `after`: catch-up from the store, then live. Items
   * travel in batches (a page of the store, or what the live tail had), so
   * gRPC's per-message cost is paid per batch.
   */
  follow(argument: _shardwrite_internal_v1_FollowRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedBatch__Output>;
  follow(argument: _shardwrite_internal_v1_FollowRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_internal_v1_FeedBatch__Output>;
  
}

export interface ShardFeedHandlers extends grpc.UntypedServiceImplementation {
  /**
   * The shard's feed from `after`: catch-up from the store, then live. Items
   * travel in batches (a page of the store, or what the live tail had), so
   * gRPC's per-message cost is paid per batch.
   */
  Follow: grpc.handleServerStreamingCall<_shardwrite_internal_v1_FollowRequest__Output, _shardwrite_internal_v1_FeedBatch>;
  
}

export interface ShardFeedDefinition extends grpc.ServiceDefinition {
  Follow: MethodDefinition<_shardwrite_internal_v1_FollowRequest, _shardwrite_internal_v1_FeedBatch, _shardwrite_internal_v1_FollowRequest__Output, _shardwrite_internal_v1_FeedBatch__Output>
}

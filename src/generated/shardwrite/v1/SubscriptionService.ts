// Original file: proto/shardwrite/v1/subscriptions.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { SubscribeRequest as _shardwrite_v1_SubscribeRequest, SubscribeRequest__Output as _shardwrite_v1_SubscribeRequest__Output } from '../../shardwrite/v1/SubscribeRequest.js';
import type { SubscribeResponse as _shardwrite_v1_SubscribeResponse, SubscribeResponse__Output as _shardwrite_v1_SubscribeResponse__Output } from '../../shardwrite/v1/SubscribeResponse.js';

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
export interface SubscriptionServiceClient extends grpc.Client {
  /**
   * Catch-up from `from`, then live, with no gap and no overlap between the
   * two. Ends only when the caller cancels it or the server shuts down; on a
   * broken connection, subscribe again from the last checkpoint received.
   * An unknown aggregate type or a malformed checkpoint is INVALID_ARGUMENT.
   */
  Subscribe(argument: _shardwrite_v1_SubscribeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_SubscribeResponse__Output>;
  Subscribe(argument: _shardwrite_v1_SubscribeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_SubscribeResponse__Output>;
  /**
   * Catch-up from `from`, then live, with no gap and no overlap between the
   * two. Ends only when the caller cancels it or the server shuts down; on a
   * broken connection, subscribe again from the last checkpoint received.
   * An unknown aggregate type or a malformed checkpoint is INVALID_ARGUMENT.
   */
  subscribe(argument: _shardwrite_v1_SubscribeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_SubscribeResponse__Output>;
  subscribe(argument: _shardwrite_v1_SubscribeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_SubscribeResponse__Output>;
  
}

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
export interface SubscriptionServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Catch-up from `from`, then live, with no gap and no overlap between the
   * two. Ends only when the caller cancels it or the server shuts down; on a
   * broken connection, subscribe again from the last checkpoint received.
   * An unknown aggregate type or a malformed checkpoint is INVALID_ARGUMENT.
   */
  Subscribe: grpc.handleServerStreamingCall<_shardwrite_v1_SubscribeRequest__Output, _shardwrite_v1_SubscribeResponse>;
  
}

export interface SubscriptionServiceDefinition extends grpc.ServiceDefinition {
  Subscribe: MethodDefinition<_shardwrite_v1_SubscribeRequest, _shardwrite_v1_SubscribeResponse, _shardwrite_v1_SubscribeRequest__Output, _shardwrite_v1_SubscribeResponse__Output>
}

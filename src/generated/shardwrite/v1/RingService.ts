// Original file: proto/shardwrite/v1/ring.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetRingRequest as _shardwrite_v1_GetRingRequest, GetRingRequest__Output as _shardwrite_v1_GetRingRequest__Output } from '../../shardwrite/v1/GetRingRequest.js';
import type { Ring as _shardwrite_v1_Ring, Ring__Output as _shardwrite_v1_Ring__Output } from '../../shardwrite/v1/Ring.js';
import type { WatchRingRequest as _shardwrite_v1_WatchRingRequest, WatchRingRequest__Output as _shardwrite_v1_WatchRingRequest__Output } from '../../shardwrite/v1/WatchRingRequest.js';

/**
 * The ring: which shards exist at which epoch, and where each one serves its
 * public API. A client that knows it can send each command straight to the
 * shard that owns its aggregate (CommandStreamService.Execute at the shard's
 * address) instead of through a router; the owner is computed from the ring
 * exactly as described in proto/shardwrite/v1/RING.md (with test vectors in
 * ring-test-vectors.json beside it).
 * 
 * Served by the router and by every shard that reads the ring database. Needs
 * the `read` scope. A shard refuses a command for an aggregate it does not own
 * at its epoch (FAILED_PRECONDITION, ErrorInfo WRONG_SHARD with the `epoch`
 * it knows) and a command for a stream being moved (UNAVAILABLE,
 * STREAM_MOVING with the target `epoch`): neither writes anything, so the
 * client fetches a ring at least that new (GetRing with `min_epoch`) and
 * sends the command again to its owner. A shard authenticates and authorizes
 * a command exactly as a router does (the same credentials, scopes and
 * tenant checks).
 */
export interface RingServiceClient extends grpc.Client {
  /**
   * The ring the server holds, after waiting (up to the call's deadline, at
   * most 5 s) until it holds `min_epoch` or newer; the server re-reads the
   * ring database while it waits. The answer may still be older than
   * `min_epoch` when the wait ran out. UNAVAILABLE when the server has no ring.
   */
  GetRing(argument: _shardwrite_v1_GetRingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  GetRing(argument: _shardwrite_v1_GetRingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  GetRing(argument: _shardwrite_v1_GetRingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  GetRing(argument: _shardwrite_v1_GetRingRequest, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  /**
   * The ring the server holds, after waiting (up to the call's deadline, at
   * most 5 s) until it holds `min_epoch` or newer; the server re-reads the
   * ring database while it waits. The answer may still be older than
   * `min_epoch` when the wait ran out. UNAVAILABLE when the server has no ring.
   */
  getRing(argument: _shardwrite_v1_GetRingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  getRing(argument: _shardwrite_v1_GetRingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  getRing(argument: _shardwrite_v1_GetRingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  getRing(argument: _shardwrite_v1_GetRingRequest, callback: grpc.requestCallback<_shardwrite_v1_Ring__Output>): grpc.ClientUnaryCall;
  
  /**
   * The ring the server holds now, then every newer one as the server learns
   * of it. Epochs only grow along one call. Ends only when the caller cancels
   * it or the server shuts down (UNAVAILABLE: watch again, at any server).
   * UNAVAILABLE at once when the server has no ring yet.
   */
  WatchRing(argument: _shardwrite_v1_WatchRingRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Ring__Output>;
  WatchRing(argument: _shardwrite_v1_WatchRingRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Ring__Output>;
  /**
   * The ring the server holds now, then every newer one as the server learns
   * of it. Epochs only grow along one call. Ends only when the caller cancels
   * it or the server shuts down (UNAVAILABLE: watch again, at any server).
   * UNAVAILABLE at once when the server has no ring yet.
   */
  watchRing(argument: _shardwrite_v1_WatchRingRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Ring__Output>;
  watchRing(argument: _shardwrite_v1_WatchRingRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_shardwrite_v1_Ring__Output>;
  
}

/**
 * The ring: which shards exist at which epoch, and where each one serves its
 * public API. A client that knows it can send each command straight to the
 * shard that owns its aggregate (CommandStreamService.Execute at the shard's
 * address) instead of through a router; the owner is computed from the ring
 * exactly as described in proto/shardwrite/v1/RING.md (with test vectors in
 * ring-test-vectors.json beside it).
 * 
 * Served by the router and by every shard that reads the ring database. Needs
 * the `read` scope. A shard refuses a command for an aggregate it does not own
 * at its epoch (FAILED_PRECONDITION, ErrorInfo WRONG_SHARD with the `epoch`
 * it knows) and a command for a stream being moved (UNAVAILABLE,
 * STREAM_MOVING with the target `epoch`): neither writes anything, so the
 * client fetches a ring at least that new (GetRing with `min_epoch`) and
 * sends the command again to its owner. A shard authenticates and authorizes
 * a command exactly as a router does (the same credentials, scopes and
 * tenant checks).
 */
export interface RingServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * The ring the server holds, after waiting (up to the call's deadline, at
   * most 5 s) until it holds `min_epoch` or newer; the server re-reads the
   * ring database while it waits. The answer may still be older than
   * `min_epoch` when the wait ran out. UNAVAILABLE when the server has no ring.
   */
  GetRing: grpc.handleUnaryCall<_shardwrite_v1_GetRingRequest__Output, _shardwrite_v1_Ring>;
  
  /**
   * The ring the server holds now, then every newer one as the server learns
   * of it. Epochs only grow along one call. Ends only when the caller cancels
   * it or the server shuts down (UNAVAILABLE: watch again, at any server).
   * UNAVAILABLE at once when the server has no ring yet.
   */
  WatchRing: grpc.handleServerStreamingCall<_shardwrite_v1_WatchRingRequest__Output, _shardwrite_v1_Ring>;
  
}

export interface RingServiceDefinition extends grpc.ServiceDefinition {
  GetRing: MethodDefinition<_shardwrite_v1_GetRingRequest, _shardwrite_v1_Ring, _shardwrite_v1_GetRingRequest__Output, _shardwrite_v1_Ring__Output>
  WatchRing: MethodDefinition<_shardwrite_v1_WatchRingRequest, _shardwrite_v1_Ring, _shardwrite_v1_WatchRingRequest__Output, _shardwrite_v1_Ring__Output>
}

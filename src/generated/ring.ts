import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { GetRingRequest as _shardwrite_v1_GetRingRequest, GetRingRequest__Output as _shardwrite_v1_GetRingRequest__Output } from './shardwrite/v1/GetRingRequest.js';
import type { Ring as _shardwrite_v1_Ring, Ring__Output as _shardwrite_v1_Ring__Output } from './shardwrite/v1/Ring.js';
import type { RingServiceClient as _shardwrite_v1_RingServiceClient, RingServiceDefinition as _shardwrite_v1_RingServiceDefinition } from './shardwrite/v1/RingService.js';
import type { RingShard as _shardwrite_v1_RingShard, RingShard__Output as _shardwrite_v1_RingShard__Output } from './shardwrite/v1/RingShard.js';
import type { WatchRingRequest as _shardwrite_v1_WatchRingRequest, WatchRingRequest__Output as _shardwrite_v1_WatchRingRequest__Output } from './shardwrite/v1/WatchRingRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  shardwrite: {
    v1: {
      GetRingRequest: MessageTypeDefinition<_shardwrite_v1_GetRingRequest, _shardwrite_v1_GetRingRequest__Output>
      Ring: MessageTypeDefinition<_shardwrite_v1_Ring, _shardwrite_v1_Ring__Output>
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
      RingService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_RingServiceClient> & { service: _shardwrite_v1_RingServiceDefinition }
      RingShard: MessageTypeDefinition<_shardwrite_v1_RingShard, _shardwrite_v1_RingShard__Output>
      WatchRingRequest: MessageTypeDefinition<_shardwrite_v1_WatchRingRequest, _shardwrite_v1_WatchRingRequest__Output>
    }
  }
}


/** The router's `SubscriptionService`: one `Subscribe` covers every shard (see cluster-feed.ts). */
import type * as grpc from '@grpc/grpc-js';
import { loadApi } from '../../src/grpc/proto.js';
import { identityOfMetadata } from '../../src/auth/identity.js';
import { rawResponses, serveStream } from '../../src/grpc/server-stream.js';
import { CAUGHT_UP_RESPONSE, FELL_BEHIND_RESPONSE, checkpointResponse, encodeResponses, type Outgoing } from '../../src/subscriptions/event-codec.js';
import type { SubscribeRequest__Output } from '../../src/generated/shardwrite/v1/SubscribeRequest.js';
import type { Logger } from '../../src/observability/logger.js';
import type { ClusterFeeds, ClusterItem } from './cluster-feed.js';

export const SUBSCRIPTION_SERVICE = 'shardwrite.v1.SubscriptionService';

/** Adds the service; `closing` ends every subscription with UNAVAILABLE when the router drains. */
export function addSubscriptionService(server: grpc.Server, deps: { feeds: ClusterFeeds; logger: Logger; closing: AbortSignal }): string {
  server.addService(rawResponses(loadApi().shardwrite.v1.SubscriptionService.service), {
    Subscribe: (call: grpc.ServerWritableStream<SubscribeRequest__Output, Buffer>) =>
      void serveStream(call, (signal) => responses(deps.feeds, call.request, authorizationOf(call), signal), {
        logger: deps.logger,
        what: 'Subscribe',
        closing: deps.closing,
        expiresAt: identityOfMetadata(call.metadata)?.expiresAt,
      }),
  });
  return SUBSCRIPTION_SERVICE;
}

/** The caller's bearer credentials, passed on to the shards, which authorize the read. */
export function authorizationOf(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): string | undefined {
  const value = call.metadata.get('authorization')[0];
  return typeof value === 'string' ? value : undefined;
}

async function* responses(feeds: ClusterFeeds, req: SubscribeRequest__Output, authorization: string | undefined, signal: AbortSignal): AsyncGenerator<Buffer[]> {
  const batches = feeds.subscribeInBatches({ from: req.from, aggregateTypes: req.aggregateTypes, eventTypes: req.eventTypes, authorization }, signal);
  for await (const batch of batches) yield encodeResponses(batch.map(toOutgoing), req.maxBatch);
}

/** What goes out for an item: an event's bytes are the shard's, with the cluster checkpoint appended. */
function toOutgoing(item: ClusterItem): Outgoing {
  switch (item.kind) {
    case 'event':
      return { event: item.encoded, checkpoint: item.checkpoint };
    case 'checkpoint':
      return checkpointResponse(item.checkpoint);
    case 'caught_up':
      return CAUGHT_UP_RESPONSE;
    case 'fell_behind':
      return FELL_BEHIND_RESPONSE;
  }
}

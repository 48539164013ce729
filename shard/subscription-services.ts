/**
 * The shard's side of subscriptions: `ShardFeed.Follow` (internal, what a
 * router merges) and `SubscriptionService.Subscribe` sent straight to this
 * shard (it covers this shard's own events, in its feed order).
 */
import * as grpc from '@grpc/grpc-js';
import type { AnyDecider } from '../src/domain/decider.js';
import { ALL_SCOPE, identityFrom, identityOfMetadata } from '../src/auth/identity.js';
import { checkPermission } from '../src/auth/interceptor.js';
import { UnauthenticatedError } from '../src/errors.js';
import { feedApi, loadApi } from '../src/grpc/proto.js';
import { serveStream } from '../src/grpc/server-stream.js';
import type { FeedBatch } from '../src/generated/shardwrite/internal/v1/FeedBatch.js';
import type { FeedItem } from '../src/generated/shardwrite/internal/v1/FeedItem.js';
import type { FollowRequest__Output } from '../src/generated/shardwrite/internal/v1/FollowRequest.js';
import type { SubscribeRequest__Output } from '../src/generated/shardwrite/v1/SubscribeRequest.js';
import type { Logger } from '../src/observability/logger.js';
import type { PgFeedReader } from '../src/store/pg-feed-reader.js';
import { parseFilter, streamIdParser } from '../src/subscriptions/filter.js';
import type { LiveTail } from '../src/subscriptions/live-tail.js';
import { CAUGHT_UP_RESPONSE, FELL_BEHIND_RESPONSE, checkpointResponse, encodeResponses, type Outgoing } from '../src/subscriptions/event-codec.js';
import { checkpointToken, decodeCheckpoint, parsePosition, START } from '../src/subscriptions/position.js';
import { rawResponses } from '../src/grpc/server-stream.js';
import type { PersonalData } from '../src/privacy/personal-data.js';
import { followShard, type FeedStart, type ShardFeedDeps } from '../src/subscriptions/shard-feed.js';

export interface SubscriptionServiceDeps {
  readonly shardId: string;
  readonly reader: PgFeedReader;
  readonly tail: LiveTail;
  readonly deciders: ReadonlyMap<string, AnyDecider>;
  readonly logger: Logger;
  /** Opens personal fields as events go out (crypto-shredding). */
  readonly personalData?: PersonalData | undefined;
}

/** A checkpoint of a direct subscription goes out at most this often when only progress was made. */
const CHECKPOINT_EVERY_MS = 500;

/**
 * Adds both services; returns the public service names (for health) and
 * `close()`, which ends every subscription with UNAVAILABLE (call it before
 * the server's shutdown, which would otherwise wait for them).
 */
export function addSubscriptionServices(server: grpc.Server, deps: SubscriptionServiceDeps): { services: string[]; close(): void } {
  const closing = new AbortController();
  const types = [...deps.deciders.keys()];
  const feed: ShardFeedDeps = { ...deps, parseStreamId: streamIdParser(types) };

  const feedService = feedApi().shardwrite.internal.v1.ShardFeed.service;
  const serializeBatch = feedService.Follow.responseSerialize as (batch: FeedBatch) => Buffer;
  server.addService(rawResponses(feedService), {
    Follow: (call: grpc.ServerWritableStream<FollowRequest__Output, Buffer>) =>
      void serveStream(call, (signal) => follow(feed, types, call.request, signal, authorized(call), serializeBatch), {
        logger: deps.logger,
        what: 'ShardFeed.Follow',
        closing: closing.signal,
        expiresAt: identityOfMetadata(call.metadata)?.expiresAt,
      }),
  });
  server.addService(rawResponses(loadApi().shardwrite.v1.SubscriptionService.service), {
    Subscribe: (call: grpc.ServerWritableStream<SubscribeRequest__Output, Buffer>) =>
      void serveStream(call, (signal) => subscribe(feed, types, call.request, signal, authorized(call)), {
        logger: deps.logger,
        what: 'Subscribe',
        closing: closing.signal,
        expiresAt: identityOfMetadata(call.metadata)?.expiresAt,
      }),
  });
  return { services: ['shardwrite.v1.SubscriptionService'], close: () => closing.abort() };
}

/**
 * The caller's tenant filter, checked when the stream starts (a refusal ends
 * it with the error). The server's interceptor already required the `read`
 * scope; a reader bound to a tenant (no `*` scope) sees only its tenant's events.
 */
function authorized(call: grpc.ServerWritableStream<unknown, unknown>): () => string | undefined {
  return () => {
    const identity = identityFrom((key) => {
      const v = call.metadata.get(key)[0];
      return typeof v === 'string' ? v : undefined;
    });
    if (!identity) throw new UnauthenticatedError('no credentials');
    checkPermission(identity, 'read');
    return identity.scopes.includes(ALL_SCOPE) ? undefined : identity.tenant;
  };
}

async function* follow(
  feed: ShardFeedDeps,
  types: string[],
  req: FollowRequest__Output,
  signal: AbortSignal,
  authorize: () => string | undefined,
  serialize: (batch: FeedBatch) => Buffer,
): AsyncGenerator<Buffer[]> {
  const tenant = authorize();
  const filter = {
    ...parseFilter({ aggregateTypes: req.aggregateTypes, eventTypes: req.eventTypes, partitionCount: req.partitionCount, partitions: req.partitions }, types),
    ...(tenant === undefined ? {} : { tenant }),
  };
  const start: FeedStart = req.fromEnd ? { fromEnd: true } : { after: parsePosition(req.after) };
  for await (const items of followShard(feed, start, filter, signal)) yield [encodeBatch(items, serialize)];
}

/** Each event's item encoded once, however many routers follow the shard (a batch's repeated field is its items' encodings, concatenated). */
const ENCODED_ITEMS = new WeakMap<FeedItem, Buffer>();
/** Each batch encoded once: followers with the same filter at the same place get the same items (see `LiveTail.afterShared`). */
const ENCODED_BATCHES = new WeakMap<readonly FeedItem[], Buffer>();

function encodeBatch(items: readonly FeedItem[], serialize: (batch: FeedBatch) => Buffer): Buffer {
  let batch = ENCODED_BATCHES.get(items);
  if (batch === undefined) {
    batch = encodeItems(items, serialize);
    ENCODED_BATCHES.set(items, batch);
  }
  return batch;
}

function encodeItems(items: readonly FeedItem[], serialize: (batch: FeedBatch) => Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    let encoded = ENCODED_ITEMS.get(item);
    if (encoded === undefined) {
      encoded = serialize({ items: [item] });
      if (item.event) ENCODED_ITEMS.set(item, encoded);
    }
    parts.push(encoded);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

async function* subscribe(feed: ShardFeedDeps, types: string[], req: SubscribeRequest__Output, signal: AbortSignal, authorize: () => string | undefined): AsyncGenerator<Buffer[]> {
  const tenant = authorize();
  const filter = { ...parseFilter({ aggregateTypes: req.aggregateTypes, eventTypes: req.eventTypes }, types), ...(tenant === undefined ? {} : { tenant }) };
  let start: FeedStart;
  if (req.from === 'end') start = { fromEnd: true };
  else if (req.from === '') start = { after: START };
  else {
    const mine = decodeCheckpoint(req.from).get(feed.shardId);
    start = mine === 'done' ? { fromEnd: true } : { after: mine ?? START };
  }
  const token = (position: string) => checkpointToken([[feed.shardId, position]]);
  let lastCheckpointAt = 0;
  for await (const items of followShard(feed, start, filter, signal)) {
    const out: Outgoing[] = [];
    for (const item of items) {
      if (item.event) out.push({ event: item.event.event as Buffer, checkpoint: token(item.event.position ?? '') });
      else if (item.caughtUp) out.push(CAUGHT_UP_RESPONSE);
      else if (item.fellBehind) out.push(FELL_BEHIND_RESPONSE);
      else if (item.progress !== undefined && Date.now() - lastCheckpointAt >= CHECKPOINT_EVERY_MS) {
        lastCheckpointAt = Date.now();
        out.push(checkpointResponse(token(item.progress)));
      } else if (item.start) out.push(checkpointResponse(token(item.start.after ?? '')));
    }
    if (out.length > 0) yield encodeResponses(out, req.maxBatch);
  }
}

/**
 * `shardwrite.v1.RingService`: the ring a process holds, for clients that
 * send commands straight to their owner shards. Served by routers and by
 * shards alike, from their ring watcher.
 */
import type * as grpc from '@grpc/grpc-js';
import { identityOfMetadata } from '../auth/identity.js';
import { ShardUnavailableError } from '../errors.js';
import { loadApi } from '../grpc/proto.js';
import { deadlineOf } from '../grpc/server.js';
import { serveStream } from '../grpc/server-stream.js';
import { toServiceError } from '../grpc/status.js';
import type { Logger } from '../observability/logger.js';
import type { GetRingRequest__Output } from '../generated/shardwrite/v1/GetRingRequest.js';
import type { Ring } from '../generated/shardwrite/v1/Ring.js';
import type { WatchRingRequest__Output } from '../generated/shardwrite/v1/WatchRingRequest.js';
import { RING_HASHING, SHARD_WEIGHT, type RingView } from './view.js';
import type { RingWatcher } from './watcher.js';

export const RING_SERVICE = 'shardwrite.v1.RingService';

/**
 * Longest a GetRing waits for the epoch it asks for.
 *
 * @default 5000
 */
export const GET_RING_MAX_WAIT_MS = 5000;

export interface RingServiceDeps {
  readonly watcher: RingWatcher;
  readonly logger: Logger;
  /** Aborted when the server drains: every watch ends with UNAVAILABLE. */
  readonly closing: AbortSignal;
}

/** The ring as the API sends it. */
export function ringMessage(view: RingView): Ring {
  return {
    epoch: String(view.epoch),
    shards: view.shards.map((s) => ({ id: s.id, address: s.address, weight: SHARD_WEIGHT })),
    hashing: RING_HASHING,
  };
}

const noRing = () => new ShardUnavailableError('no ring has been published yet');

/** Adds the service to `server`; returns its name (for health). */
export function addRingService(server: grpc.Server, deps: RingServiceDeps): string {
  const { watcher } = deps;
  server.addService(loadApi().shardwrite.v1.RingService.service, {
    WatchRing: (call: grpc.ServerWritableStream<WatchRingRequest__Output, Ring>) =>
      void serveStream(call, (signal) => rings(watcher, signal), {
        logger: deps.logger,
        what: 'WatchRing',
        closing: deps.closing,
        expiresAt: identityOfMetadata(call.metadata)?.expiresAt,
      }),
    GetRing: (call: grpc.ServerUnaryCall<GetRingRequest__Output, Ring>, callback: grpc.sendUnaryData<Ring>) => {
      const minEpoch = Number(call.request.minEpoch);
      const deadline = deadlineOf(call);
      const waitMs = Math.min(GET_RING_MAX_WAIT_MS, deadline === undefined ? Infinity : deadline - Date.now() - 50);
      void watcher.waitForEpoch(Number.isFinite(minEpoch) ? minEpoch : Number.MAX_SAFE_INTEGER, waitMs).then(() => {
        const view = watcher.view;
        if (view === undefined) callback(toServiceError(noRing()));
        else callback(null, ringMessage(view));
      });
    },
  });
  return RING_SERVICE;
}

/** The ring held now, then each newer one, until `signal` aborts. */
async function* rings(watcher: RingWatcher, signal: AbortSignal): AsyncGenerator<Ring[]> {
  let wake: (() => void) | undefined;
  const off = watcher.onChange(() => wake?.());
  const stop = () => wake?.();
  signal.addEventListener('abort', stop);
  try {
    let sent = 0;
    if (watcher.view === undefined) throw noRing();
    while (!signal.aborted) {
      const view = watcher.view;
      if (view !== undefined && view.epoch > sent) {
        sent = view.epoch;
        yield [ringMessage(view)];
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    off();
    signal.removeEventListener('abort', stop);
  }
}

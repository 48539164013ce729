/**
 * What the phases of one run of a move share: the move, the rings it hashes
 * with, the participants' stores, the run's options and its figures. Each
 * phase (phases/) takes the part of it it reads, and returns what it found.
 */
import type * as grpc from '@grpc/grpc-js';
import { asError } from '../errors.js';
import type { RingView } from '../ring/index.js';
import type { MoveTally } from './figures.js';
import type { MoveRecord } from './move-store.js';
import type { ShardDb } from './shard-db.js';

/** The knobs the phases use, resolved (see `RebalancerOptions` for each default). */
export interface MoveRunOptions {
  readonly batchStreams: number;
  readonly batchEvents: number;
  readonly pauseMs: number;
  readonly statementStreams: number;
  readonly fenceWaitMs: number;
  readonly planNoticeMs: number;
  readonly healthTimeoutMs: number;
  readonly credentials?: grpc.ChannelCredentials;
  readonly signal?: AbortSignal;
}

export interface MoveRun {
  readonly move: MoveRecord;
  /** Each participant's store id, checked against its store and its registration. */
  readonly identities: ReadonlyMap<string, string>;
  /** The target ring. */
  readonly view: RingView;
  /** The ring before the move (for hashing only: a removed shard's address is not known). */
  readonly base: RingView;
  /** Every shard taking part: the old ring's and the new ring's. */
  readonly dbs: ReadonlyMap<string, ShardDb>;
  /** The shards whose streams may move away (every participant but an added shard). */
  readonly sources: readonly ShardDb[];
  readonly options: MoveRunOptions;
  readonly tally: MoveTally;
}

/** Waits `ms`, or rejects with the signal's reason once it aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(asError(signal.reason));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(asError(signal!.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

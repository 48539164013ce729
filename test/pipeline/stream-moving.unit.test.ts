/**
 * Commands for a stream that a rebalance is moving away: the old owner's
 * store refuses the append (StreamMovingError); the pipeline waits briefly for
 * the new ring and answers WRONG_SHARD (the router retries at the new owner),
 * or the retryable UNAVAILABLE / STREAM_MOVING when the ring does not come in
 * time — never a wrong answer.
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { commandSpecs, deciderRegistry, modules } from '../../src/domain/index.js';
import { StreamMovingError, WrongShardError } from '../../src/errors.js';
import { toRpcStatus } from '../../src/grpc/status.js';
import { createLogger } from '../../src/observability/logger.js';
import { PipelineMetrics } from '../../src/observability/metrics.js';
import { ALLOW_ALL } from '../../src/auth/authorize.js';
import { AggregateLoader } from '../../src/pipeline/loader.js';
import { AggregateCache } from '../../src/pipeline/aggregate-cache.js';
import type { Ownership } from '../../src/pipeline/ownership.js';
import { CommandPipeline } from '../../src/pipeline/pipeline.js';
import type { AppendEntry, AppendResult, Appender, CommandRecord, EventReader, StoredEvent } from '../../src/store/types.js';

/** A store whose appends are refused as `refuse` says, then succeed. */
class SealedStore implements Appender, EventReader {
  appended: AppendEntry[] = [];
  constructor(private readonly refuse: () => Error | undefined) {}
  async append(entry: AppendEntry): Promise<AppendResult> {
    const err = this.refuse();
    if (err) throw err;
    this.appended.push(entry);
    return { streamId: entry.streamId, version: entry.baseVersion + entry.events.length, positions: entry.events.map((_, i) => BigInt(i + 1)), recordedAt: new Date() };
  }
  async readStream(): Promise<StoredEvent[]> {
    return [];
  }
  async findCommands(): Promise<CommandRecord[]> {
    return [];
  }
  async streamTenant(): Promise<string | undefined> {
    return undefined;
  }
  async close(): Promise<void> {}
}

interface OwnershipLog {
  waits: { epoch: number; timeoutMs: number }[];
  refreshes: number;
}

function setup(refuse: () => Error | undefined, reached: boolean) {
  const store = new SealedStore(refuse);
  const log: OwnershipLog = { waits: [], refreshes: 0 };
  const ownership: Ownership = {
    epoch: () => 4,
    assertOwner: () => {},
    onFenced: () => {},
    awaitEpoch: async (epoch, timeoutMs) => {
      log.waits.push({ epoch, timeoutMs });
      return reached;
    },
    refresh: async () => {
      log.refreshes++;
    },
  };
  const metrics = new PipelineMetrics(new Registry());
  const pipeline = new CommandPipeline(
    {
      deciders: deciderRegistry(modules),
      reader: store,
      appender: store,
      loader: new AggregateLoader(store, new AggregateCache(), metrics),
      authorizer: ALLOW_ALL,
      ownership,
      metrics,
      logger: createLogger('test', 'silent'),
    },
    { moveWaitMs: 1500 },
  );
  return { store, pipeline, log };
}

const addLine = { orderId: 'o1', lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '10' };
const spec = commandSpecs(modules).get('shardwrite.v1.OrderService/AddOrderLine')!;

describe('a command for a stream that is being moved away', () => {
  it('waits for the new ring and is answered WRONG_SHARD at the new epoch, which the router retries at the new owner', async () => {
    const { pipeline, log, store } = setup(() => new StreamMovingError(5, 250), true);
    const err = await pipeline.execute(spec, addLine, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongShardError);
    expect(err).toMatchObject({ epoch: 5 });
    expect(log.waits).toEqual([{ epoch: 5, timeoutMs: 1500 }]);
    expect(store.appended).toEqual([]);
  });

  it('is answered the retryable UNAVAILABLE / STREAM_MOVING with a retry hint when the new ring does not come in time', async () => {
    const { pipeline } = setup(() => new StreamMovingError(5, 250), false);
    const err = await pipeline.execute(spec, addLine, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamMovingError);
    expect(toRpcStatus(err)).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      reason: 'STREAM_MOVING',
      retryAfterMs: 250,
      metadata: { epoch: '5', retry_after_ms: '250' },
    });
  });

  it('waits no longer than its deadline allows, leaving time for the retry elsewhere', async () => {
    const { pipeline, log } = setup(() => new StreamMovingError(5, 250), false);
    await pipeline.execute(spec, addLine, { deadline: Date.now() + 1000 }).catch(() => undefined);
    expect(log.waits).toHaveLength(1);
    expect(log.waits[0]!.timeoutMs).toBeLessThanOrEqual(750);
    const tight = setup(() => new StreamMovingError(5, 250), true);
    const err = await tight.pipeline.execute(spec, addLine, { deadline: Date.now() + 200 }).catch((e: unknown) => e);
    expect(tight.log.waits).toEqual([]);
    expect(err).toBeInstanceOf(StreamMovingError);
  });

  it('when the store is sealed for a move the shard had not heard of, re-reads the ring and tries again', async () => {
    let refusals = 1;
    const { pipeline, log, store } = setup(() => (refusals-- > 0 ? new StreamMovingError(5, 250, 'unknown move', true) : undefined), false);
    const outcome = await pipeline.execute(spec, addLine, {});
    expect(outcome.version).toBe(1);
    expect(log.refreshes).toBe(1);
    expect(log.waits).toEqual([]);
    expect(store.appended).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import {
  MoveInProgressError,
  RebalanceError,
  commandOf,
  copyBatches,
  copyItem,
  decide,
  movingStreams,
  progressBar,
  progressLine,
  targetRing,
  type CopyItem,
  type MoveProgress,
  type PlannedMove,
} from '../../src/rebalance/index.js';
import { NO_FIGURES } from '../../src/rebalance/move-store.js';
import { RingView, type RingDocument } from '../../src/ring/index.js';
import { expectThrow } from '../support/expect-error.js';

const ring = (epoch: number, ...ids: number[]): RingDocument => ({
  epoch,
  shards: ids.map((k) => ({ id: `shard-${k}`, address: `10.0.0.${k}:50051` })),
});
const keys = Array.from({ length: 20_000 }, (_, i) => ({ aggregateId: `order-${i}` }));

function moved(from: RingDocument, to: RingDocument): { share: number; wrong: number } {
  const a = new RingView(from);
  const b = new RingView(to);
  let moves = 0;
  let wrong = 0;
  const bySource = new Map<string, { aggregateId: string }[]>();
  for (const k of keys) {
    const id = a.ownerOf(k.aggregateId).id;
    bySource.set(id, [...(bySource.get(id) ?? []), k]);
  }
  for (const [id, mine] of bySource) {
    for (const [owner, rows] of movingStreams(id, mine, b)) {
      moves += rows.length;
      for (const r of rows) if (b.ownerOf(r.aggregateId).id !== owner) wrong++;
    }
  }
  return { share: moves / keys.length, wrong };
}

describe('the rebalance plan', () => {
  it('adds a shard at the next epoch after the others, and takes one out keeping the rest in order', () => {
    expect(targetRing(ring(3, 0, 1, 2), { kind: 'add', shardId: 'shard-3', address: '10.0.0.3:50051' })).toEqual(ring(4, 0, 1, 2, 3));
    expect(targetRing(ring(4, 0, 1, 2, 3), { kind: 'remove', shardId: 'shard-1' })).toEqual(ring(5, 0, 2, 3));
    expectThrow(() => targetRing(ring(1, 0), { kind: 'remove', shardId: 'shard-0' }), /only shard/);
    expectThrow(() => targetRing(ring(1, 0), { kind: 'add', shardId: 'shard-1', address: '10.0.0.0:50051' }), /belongs to shard-0/);
    expectThrow(() => targetRing(ring(1, 0), { kind: 'add', shardId: 'Shard 1', address: 'h:1' }), RebalanceError);
  });

  it('moves only the streams whose owner changes, about 1/(N+1) of them, each to its owner under the new ring', () => {
    for (const n of [2, 3, 4, 7]) {
      const before = ring(1, ...Array.from({ length: n }, (_, k) => k));
      const after = ring(2, ...Array.from({ length: n + 1 }, (_, k) => k));
      const added = moved(before, after);
      expect(added.wrong).toBe(0);
      expect(Math.abs(added.share - 1 / (n + 1))).toBeLessThan(0.05);
      // Removing it again moves the same streams back, and nothing else.
      const removed = moved(after, before);
      expect(removed.wrong).toBe(0);
      expect(removed.share).toBeCloseTo(added.share, 10);
    }
  });

  it('starts a move, resumes the same request, refuses a different one while a move is unfinished, and does nothing when the ring already is as asked', () => {
    const current = ring(3, 0, 1, 2);
    const add = { kind: 'add', shardId: 'shard-3', address: '10.0.0.3:50051' } as const;
    expect(decide(current, undefined, add)).toEqual({ action: 'start', target: ring(4, 0, 1, 2, 3) });
    const active: PlannedMove = { targetEpoch: 4, kind: 'add', shardId: 'shard-3', target: ring(4, 0, 1, 2, 3), phase: 'delta' };
    expect(decide(current, active, add)).toEqual({ action: 'resume', move: active });
    // Resuming after the switch: the ring already names the shard, the move is still unfinished.
    expect(decide(ring(4, 0, 1, 2, 3), { ...active, phase: 'cleanup' }, add)).toMatchObject({ action: 'resume' });

    const other = () => decide(current, active, { kind: 'remove', shardId: 'shard-1' });
    expectThrow(other, MoveInProgressError);
    expectThrow(other, /a move is in progress: add shard-3 at 10\.0\.0\.3:50051 \(to epoch 4, phase delta\); rerun `shardwrite ring add shard-3 --address 10\.0\.0\.3:50051`/);
    expectThrow(() => decide(current, active, { ...add, address: '10.0.0.9:1' }), /adds shard-3 at 10\.0\.0\.3:50051, not 10\.0\.0\.9:1/);

    expect(decide(ring(4, 0, 1, 2, 3), undefined, add)).toEqual({ action: 'done', epoch: 4 });
    expect(decide(current, undefined, { kind: 'remove', shardId: 'shard-7' })).toEqual({ action: 'done', epoch: 3 });
    expectThrow(() => decide(ring(4, 0, 1, 2, 3), undefined, { ...add, address: '10.0.0.9:1' }), /on the ring at 10\.0\.0\.3:50051/);
    expect(commandOf({ kind: 'remove', shardId: 'shard-2', target: current })).toBe('shardwrite ring remove shard-2');
  });

  it('copies each stream from what its new owner holds, starts over a sealed leftover, and refuses to copy over a newer live copy', () => {
    const row = { streamId: 'order-header-a', aggregateType: 'order-header', aggregateId: 'a', version: 7 };
    expect(copyItem(row, undefined)).toEqual({ streamId: 'order-header-a', aggregateType: 'order-header', aggregateId: 'a', from: 0, to: 7, purge: false });
    expect(copyItem(row, { version: 4, sealed: false })).toMatchObject({ from: 4, to: 7, purge: false });
    expect(copyItem(row, { version: 7, sealed: false })).toMatchObject({ from: 7, to: 7 });
    expect(copyItem(row, { version: 9, sealed: true })).toMatchObject({ from: 0, to: 7, purge: true });
    expect(copyItem(row, { version: 8, sealed: false })).toBeUndefined();
  });

  it('cuts a copy into batches bounded by streams and events, splits a long stream into ranges, and skips streams with nothing to copy', () => {
    const item = (id: string, from: number, to: number, purge = false): CopyItem => ({ streamId: id, aggregateType: 't', aggregateId: id, from, to, purge });
    const items = [item('a', 0, 3), item('b', 2, 2), item('c', 0, 10), item('d', 5, 6), item('e', 1, 1, true), item('f', 0, 2)];
    expect(copyBatches(items, 10, 8).map((b) => b.map((i) => `${i.streamId}${i.from}-${i.to}`))).toEqual([['a0-3'], ['c0-8'], ['c8-10'], ['d5-6', 'e1-1', 'f0-2']]);
    // A long stream goes in consecutive ranges, and only its first range drops a sealed leftover.
    expect(copyBatches([item('g', 0, 25, true)], 10, 10).map((b) => b.map((i) => [i.from, i.to, i.purge]))).toEqual([[[0, 10, true]], [[10, 20, false]], [[20, 25, false]]]);
    expect(copyBatches(items, 2, 100).map((b) => b.map((i) => i.streamId))).toEqual([['a', 'c'], ['d', 'e'], ['f']]);
    expect(copyBatches([], 1, 1)).toEqual([]);
    expectThrow(() => copyBatches(items, 0, 1), RangeError);
  });

  it('reports progress as a plain line for logs and as a bar for a terminal', () => {
    const p: MoveProgress = {
      targetEpoch: 5,
      kind: 'add',
      shardId: 'shard-3',
      phase: 'precopy',
      figures: { ...NO_FIGURES, streamsTotal: 25_000, streamsCopied: 12_345, eventsCopied: 40_123 },
      elapsedMs: 1500,
      streamsPerSecond: 8200,
      etaMs: 1540,
    };
    expect(progressLine(p)).toBe('epoch 5 (add shard-3) precopy: 12,345/25,000 streams moved, 40,123 events copied, 8,200 streams/s, about 1.5 s left');
    expect(progressBar(p, 10)).toBe('precopy [█████·····] 12,345/25,000 streams moved, 40,123 events copied, 8,200 streams/s, about 1.5 s left');
    expect(progressLine({ ...p, phase: 'cleanup', streamsPerSecond: undefined, etaMs: undefined, figures: { ...p.figures, streamsCleaned: 25_000 } })).toBe(
      'epoch 5 (add shard-3) cleanup: 25,000/25,000 old copies deleted, 40,123 events copied',
    );
  });
});

import { describe, expect, it } from 'vitest';
import HashRing from 'hashring';
import { RingDocumentError, RingView, parseRingBootstrap, ringToJson, validateRingDocument, type RingDocument } from '../../src/ring/index.js';
import { expectThrow } from '../support/expect-error.js';

const ring = (n: number, epoch = 1): RingDocument => ({
  epoch,
  shards: Array.from({ length: n }, (_, k) => ({ id: `shard-${k}`, address: `10.0.0.${k}:50051` })),
});

const keys = Array.from({ length: 20_000 }, (_, i) => `order-${i}`);

describe('RingView', () => {
  it('places every id exactly where plain hashring (md5, ketama) does: existing data stays where it is', () => {
    const view = new RingView(ring(4));
    const plain = new HashRing(['shard-0', 'shard-1', 'shard-2', 'shard-3'], 'md5');
    for (const k of keys) expect(view.ownerOf(k).id).toBe(plain.range(k, 1)[0]);
  });

  it('gives every aggregate id to one shard, roughly evenly, and the same shard for the same ring', () => {
    const a = new RingView(ring(3));
    const b = new RingView(ring(3));
    const counts = new Map<string, number>();
    for (const k of keys) {
      const owner = a.ownerOf(k).id;
      expect(b.ownerOf(k).id).toBe(owner);
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['shard-0', 'shard-1', 'shard-2']);
    for (const n of counts.values()) expect(n / keys.length).toBeGreaterThan(0.2);
  });

  it('hashes shard ids, not addresses: a shard that moves keeps its aggregates', () => {
    const before = new RingView(ring(3));
    const moved = new RingView({ epoch: 2, shards: ring(3).shards.map((s, k) => ({ id: s.id, address: `elsewhere-${k}:1` })) });
    for (const k of keys.slice(0, 2000)) expect(moved.ownerOf(k).id).toBe(before.ownerOf(k).id);
    expect(moved.ownerOf('order-1').address).toMatch(/^elsewhere-/);
  });

  it('moves only about 1/(N+1) of the aggregates when a shard is added, all of them to the new shard', () => {
    const three = new RingView(ring(3));
    const four = new RingView(ring(4, 2));
    let moved = 0;
    for (const k of keys) {
      const from = three.ownerOf(k).id;
      const to = four.ownerOf(k).id;
      if (from === to) continue;
      moved++;
      expect(to).toBe('shard-3');
    }
    expect(moved / keys.length).toBeGreaterThan(0.15);
    expect(moved / keys.length).toBeLessThan(0.35);
  });

  it('does not depend on the order the shards are listed in', () => {
    const a = new RingView(ring(4));
    const b = new RingView({ epoch: 1, shards: [...ring(4).shards].reverse() });
    for (const k of keys.slice(0, 2000)) expect(b.ownerOf(k).id).toBe(a.ownerOf(k).id);
  });
});

describe('ring documents', () => {
  it('parses the bootstrap setting into epoch 1', () => {
    expect(parseRingBootstrap('shard-0=127.0.0.1:50061, shard-1=shard-1.shards:50051')).toEqual({
      epoch: 1,
      shards: [
        { id: 'shard-0', address: '127.0.0.1:50061' },
        { id: 'shard-1', address: 'shard-1.shards:50051' },
      ],
    });
  });

  it('refuses empty rings, bad ids and addresses, duplicates and non-positive epochs', () => {
    const bad: unknown[] = [
      { epoch: 0, shards: ring(1).shards },
      { epoch: 1.5, shards: ring(1).shards },
      { epoch: 1, shards: [] },
      { epoch: 1, shards: [{ id: 'Shard_0', address: 'a:1' }] },
      { epoch: 1, shards: [{ id: 'shard-0', address: 'no-port' }] },
      { epoch: 1, shards: [{ id: 'shard-0', address: 'a:70000' }] },
      {
        epoch: 1,
        shards: [
          { id: 'shard-0', address: 'a:1' },
          { id: 'shard-0', address: 'b:1' },
        ],
      },
      {
        epoch: 1,
        shards: [
          { id: 'shard-0', address: 'a:1' },
          { id: 'shard-1', address: 'a:1' },
        ],
      },
      null,
    ];
    for (const doc of bad) expectThrow(() => validateRingDocument(doc), RingDocumentError, JSON.stringify(doc));
    expectThrow(() => parseRingBootstrap('shard-0'), RingDocumentError);
  });

  it('prints the machine-readable form ring show --json promises', () => {
    expect(JSON.parse(ringToJson(ring(2, 7)))).toEqual({
      epoch: 7,
      shards: [
        { id: 'shard-0', address: '10.0.0.0:50051' },
        { id: 'shard-1', address: '10.0.0.1:50051' },
      ],
    });
  });
});

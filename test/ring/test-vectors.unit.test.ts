/**
 * The hashing test vectors (proto/shardwrite/v1/ring-test-vectors.json) are
 * what the service computes, and what RING.md specifies: checked against the
 * real ring code (`RingView`) and against an implementation written from the
 * document alone (no hashring), as a client in another language would.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RING_HASHING, RingView } from '../../src/ring/index.js';
import { RING_VECTORS_FILE, buildVectors, type RingVectors } from '../../scripts/ring-test-vectors.js';

const vectors = JSON.parse(readFileSync(RING_VECTORS_FILE, 'utf8')) as RingVectors;

const u32le = (key: string, offset = 0) => createHash('md5').update(key, 'utf8').digest().readUInt32LE(offset);

/** RING.md, steps 1–4, and nothing else. */
function documentedRing(shards: readonly { id: string; weight: number }[]) {
  const total = shards.reduce((w, s) => w + s.weight, 0);
  const points: { value: number; id: string }[] = [];
  for (const s of shards) {
    const vnodes = Math.floor((s.weight / total) * 40 * shards.length);
    for (let k = 0; k < vnodes; k++) {
      const d = createHash('md5').update(`${s.id}-${k}`, 'utf8').digest();
      for (let j = 0; j < 4; j++) points.push({ value: d.readUInt32LE(4 * j), id: s.id });
    }
  }
  points.sort((a, b) => a.value - b.value); // Array.prototype.sort is stable
  return {
    points,
    owner(aggregateId: string): string {
      const h = u32le(aggregateId);
      return (points.find((p) => p.value >= h) ?? points[0]!).id;
    },
  };
}

describe('the ring test vectors', () => {
  it('name the hashing the service reports', () => {
    expect(vectors.hashing).toBe(RING_HASHING);
  });

  it('are what the ring code computes today (regenerate with `npx tsx scripts/ring-test-vectors.ts` only on purpose)', () => {
    expect(buildVectors()).toEqual(vectors);
  });

  it('give every aggregate id the owner RingView gives it, and cover wrap-around and the 39-vnode rounding', () => {
    let checked = 0;
    for (const ring of vectors.rings) {
      const view = new RingView({ epoch: 1, shards: ring.shards.map(({ id, address }) => ({ id, address })) });
      for (const v of ring.owners) {
        expect(view.ownerOf(v.aggregateId).id, `${ring.name}: ${v.aggregateId}`).toBe(v.owner);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
    expect(vectors.rings.some((r) => r.owners.some((o) => o.aggregateId.startsWith('wrap-')))).toBe(true);
    expect(vectors.rings.some((r) => Object.values(r.points).every((n) => n === 39 * 4))).toBe(true);
  });

  it('are reproduced by an implementation written from RING.md alone: points, positions and owners', () => {
    for (const ring of vectors.rings) {
      const documented = documentedRing(ring.shards);
      const counts: Record<string, number> = {};
      for (const p of documented.points) counts[p.id] = (counts[p.id] ?? 0) + 1;
      expect(counts, ring.name).toEqual(ring.points);
      for (const v of ring.owners) {
        expect(u32le(v.aggregateId), v.aggregateId).toBe(v.hash);
        expect(documented.owner(v.aggregateId), `${ring.name}: ${v.aggregateId}`).toBe(v.owner);
      }
    }
  });

  it('agree with RingView on many more ids than the file lists', () => {
    const shards = ['shard-0', 'shard-1', 'shard-2', 'shard-3', 'shard-4', 'shard-5', 'shard-6'].map((id, i) => ({ id, address: `h:${i + 1}`, weight: 1 }));
    for (const n of [2, 3, 7]) {
      const view = new RingView({ epoch: 1, shards: shards.slice(0, n) });
      const documented = documentedRing(shards.slice(0, n));
      for (let i = 0; i < 5000; i++) expect(documented.owner(`agg-${i}`)).toBe(view.ownerOf(`agg-${i}`).id);
    }
  });
});

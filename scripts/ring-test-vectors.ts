/**
 * Writes proto/shardwrite/v1/ring-test-vectors.json: rings and aggregate ids
 * with the owner the real ring code (`RingView`) gives each, so a client in
 * another language can check its owner computation (RING.md) against them.
 * `npx tsx scripts/ring-test-vectors.ts`; test/ring/test-vectors.unit.test.ts
 * fails when the file and the ring code disagree.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { PROTO_DIR } from '../src/grpc/proto.js';
import { RING_HASHING, RingView, SHARD_WEIGHT, type RingDocument } from '../src/ring/index.js';

export const RING_VECTORS_FILE = resolve(PROTO_DIR, 'shardwrite/v1/ring-test-vectors.json');

export interface RingVectors {
  readonly hashing: string;
  readonly rings: readonly {
    readonly name: string;
    readonly shards: readonly { id: string; address: string; weight: number }[];
    /** Points each shard has on the continuum (vnodes × 4). */
    readonly points: Readonly<Record<string, number>>;
    /** `hash` is the key's position on the continuum (RING.md, step 3), for debugging. */
    readonly owners: readonly { aggregateId: string; hash: number; owner: string }[];
  }[];
}

/** The key's position on the continuum: the first four bytes of its MD5, little-endian. */
const position = (key: string) => createHash('md5').update(key, 'utf8').digest().readUInt32LE(0);

const RINGS: readonly { name: string; ids: readonly string[] }[] = [
  { name: 'one shard', ids: ['shard-0'] },
  { name: 'three shards (npm start)', ids: ['shard-0', 'shard-1', 'shard-2'] },
  { name: 'four shards (one added)', ids: ['shard-0', 'shard-1', 'shard-2', 'shard-3'] },
  { name: 'three shards, one left (ids need not be contiguous)', ids: ['shard-0', 'shard-1', 'shard-3'] },
  { name: 'seven shards (39 vnodes each: the floating-point rule)', ids: Array.from({ length: 7 }, (_, i) => `shard-${i}`) },
  { name: 'other ids', ids: ['eu-west-a', 'eu-west-b', 'us-east-a', 'ap-1', 'x'] },
];

const IDS = [
  'o1',
  'order-1',
  'order-2',
  'order-42',
  'a',
  'Z',
  '0',
  '1234567890',
  'f47ac10b-58cc-4372-a567-0e02b2c3d479',
  '6ba7b810-9dad-11d1-80b4-00c04fd430c8',
  'tenant-a/order-7',
  'commande-été',
  '注文-1',
  '🛒-basket-9',
  '__proto__',
  'constructor',
  'a b c',
  'x'.repeat(200),
  ...Array.from({ length: 40 }, (_, i) => `order-${1000 + i * 37}`),
];

export function buildVectors(): RingVectors {
  return {
    hashing: RING_HASHING,
    rings: RINGS.map(({ name, ids }) => {
      const doc: RingDocument = { epoch: 1, shards: ids.map((id, i) => ({ id, address: `10.0.0.${i + 1}:50061` })) };
      const view = new RingView(doc);
      const points = view.points();
      const lastPoint = Math.max(...Object.values(points).flat());
      // Keys past the last point (they wrap around to the first), found by trying: at least one per ring.
      const wrap: string[] = [];
      for (let i = 0; wrap.length < 2 && i < 1_000_000; i++) {
        const key = `wrap-${i}`;
        if (position(key) > lastPoint) wrap.push(key);
      }
      return {
        name,
        shards: doc.shards.map((s) => ({ ...s, weight: SHARD_WEIGHT })),
        points: Object.fromEntries(Object.entries(points).map(([id, p]) => [id, p.length])),
        owners: [...IDS, ...wrap].map((aggregateId) => ({ aggregateId, hash: position(aggregateId), owner: view.ownerOf(aggregateId).id })),
      };
    }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(RING_VECTORS_FILE, JSON.stringify(buildVectors(), null, 1) + '\n');
  console.log(`wrote ${RING_VECTORS_FILE}`);
}

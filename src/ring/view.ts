/**
 * A ring document made searchable: which shard owns an aggregate id. Routers
 * and shards build it from the same document with the same code, so they agree
 * on every owner at a given epoch.
 */
import HashRing from 'hashring';
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { RingDocument, RingShard } from './document.js';

/**
 * md5, as hashring computes it by default, with Node's one-shot `crypto.hash`
 * where there is one (Node ≥ 20.12): the same digests without a Hash object
 * per lookup, which every command pays for twice (router and shard).
 */
const md5: (key: string) => Buffer = typeof oneShotHash === 'function' ? (key) => oneShotHash('md5', key, 'buffer') : (key) => createHash('md5').update(key).digest();

/**
 * The name of the hashing below, as the ring's public API reports it
 * (`RingService`, `Ring.hashing`) and proto/shardwrite/v1/RING.md specifies
 * it: a client that computes owners checks it knows this name.
 */
export const RING_HASHING = 'hashring-ketama-md5-v1';

/**
 * Every shard's weight in the hashing: equal weights, so adding a shard moves
 * keys only to the new shard (RING.md gives the formula with weights).
 *
 * @default 1
 */
export const SHARD_WEIGHT = 1;

/** Most answers a view remembers. */
const MEMO_ENTRIES = 4096;

/**
 * Consistent hashing with `hashring` (ketama: md5, 40 virtual nodes × 4 points
 * per shard) over the stable shard ids with equal weights. Hashing ids, not
 * addresses, means a shard that moves to another host keeps its aggregates;
 * equal weights mean adding a shard moves only about 1/(N+1) of the keys.
 */
export class RingView {
  readonly epoch: number;
  readonly shards: readonly RingShard[];
  readonly #ring: HashRing;
  readonly #byId: ReadonlyMap<string, RingShard>;
  /**
   * Recent answers: a command's aggregate is looked up more than once (the
   * shard checks it on admission and again before its append), and a view
   * never changes. Emptied when full.
   */
  readonly #owners = new Map<string, RingShard>();

  constructor(readonly document: RingDocument) {
    this.epoch = document.epoch;
    this.shards = document.shards;
    this.#byId = new Map(document.shards.map((s) => [s.id, s]));
    // hashring's own LRU cache is never consulted (see ownerOf).
    this.#ring = new HashRing(
      document.shards.map((s) => s.id),
      md5,
      { 'max cache size': 10_000 },
    );
  }

  /** The shard that owns `aggregateId` at this epoch (the hash key is the aggregate id itself). */
  ownerOf(aggregateId: string): RingShard {
    const known = this.#owners.get(aggregateId);
    if (known !== undefined) return known;
    // Not `get`: its LRU cache is a plain object keyed by the id, so an id like `__proto__` would
    // corrupt Object.prototype. `range(id, 1)` finds the same point on the ring without that cache.
    const id = this.#ring.range(aggregateId, 1)[0] ?? '';
    const shard = this.#byId.get(id);
    // Unreachable: a ring is never empty and hashring only returns its own ids.
    if (!shard) throw new Error(`ring epoch ${this.epoch} has no owner for "${aggregateId}"`);
    if (this.#owners.size >= MEMO_ENTRIES) this.#owners.clear();
    this.#owners.set(aggregateId, shard);
    return shard;
  }

  /**
   * The continuum's points by shard id, each list ascending (RING.md, step 2):
   * for the documentation's test vectors, not for lookups.
   */
  points(): Record<string, number[]> {
    // hashring has the method; its type declarations leave it out.
    return (this.#ring as unknown as { points(): Record<string, number[]> }).points();
  }

  /** The shard with this id, if it is on the ring. */
  shard(id: string): RingShard | undefined {
    return this.#byId.get(id);
  }
}

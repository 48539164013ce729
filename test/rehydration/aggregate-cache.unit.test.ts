import { describe, expect, it } from 'vitest';
import { AggregateCache, type CachedAggregate } from '../../src/pipeline/aggregate-cache.js';

const entry = (version: number, state: unknown = { v: version }): CachedAggregate => ({ version, state, commandIds: undefined });

describe('AggregateCache', () => {
  it('evicts the least recently used entry beyond its entry bound', () => {
    const cache = new AggregateCache({ maxEntries: 2 });
    cache.set('a', entry(1));
    cache.set('b', entry(1));
    cache.get('a');
    cache.set('c', entry(1));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.version).toBe(1);
    expect(cache.get('c')?.version).toBe(1);
    expect(cache.size).toBe(2);
  });

  it('evicts beyond its byte bound and refuses a single entry larger than the bound', () => {
    const cache = new AggregateCache({ maxBytes: 4_000 });
    const big = { blob: 'x'.repeat(900) }; // about 1.9 kB each
    cache.set('a', entry(1, big));
    cache.set('b', entry(1, big));
    cache.set('c', entry(1, big));
    expect(cache.approximateBytes).toBeLessThanOrEqual(4_000);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('c')).toBeDefined();
    cache.set('huge', entry(1, { blob: 'x'.repeat(5_000) }));
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.get('c')).toBeDefined();
  });

  it('holds nothing when sized to zero entries', () => {
    const cache = new AggregateCache({ maxEntries: 0 });
    cache.set('a', entry(1));
    expect(cache.get('a')).toBeUndefined();
  });

  it('records a snapshot only on an entry at least that new, and never moves the record back', () => {
    const cache = new AggregateCache();
    cache.set('a', entry(10));
    cache.markSnapshot('a', 12);
    expect(cache.peek('a')?.snapshotVersion).toBeUndefined();
    cache.markSnapshot('a', 8);
    cache.markSnapshot('a', 5);
    expect(cache.peek('a')?.snapshotVersion).toBe(8);
    cache.markSnapshot('missing', 1);
    expect(cache.peek('missing')).toBeUndefined();
  });

  it('keeps its byte count exact across replace and delete', () => {
    const cache = new AggregateCache();
    cache.set('a', entry(1, { s: 'abc' }));
    const one = cache.approximateBytes;
    cache.set('a', entry(2, { s: 'abc' }));
    expect(cache.approximateBytes).toBe(one);
    cache.delete('a');
    expect(cache.approximateBytes).toBe(0);
    cache.set('b', entry(1));
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.approximateBytes).toBe(0);
  });

  it('keeps exactly the most recently used entries through thousands of random operations', () => {
    // Oracle: an array in recency order, oldest first.
    const max = 50;
    const cache = new AggregateCache({ maxEntries: max });
    let order: string[] = [];
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 20_000; i++) {
      const key = `s${random(120)}`;
      const op = random(10);
      if (op < 4) {
        cache.set(key, entry(i));
        order = order
          .filter((k) => k !== key)
          .concat(key)
          .slice(-max);
      } else if (op < 8) {
        const hit = cache.get(key);
        expect(hit !== undefined).toBe(order.includes(key));
        if (hit) order = order.filter((k) => k !== key).concat(key);
      } else if (op < 9) {
        expect(cache.peek(key) !== undefined).toBe(order.includes(key));
      } else {
        cache.delete(key);
        order = order.filter((k) => k !== key);
      }
      expect(cache.size).toBe(order.length);
    }
    // Fill it up with new keys: the survivors are evicted oldest first.
    const survivors = [...order];
    const free = max - survivors.length;
    for (let i = 0; i < max; i++) {
      cache.set(`new${i}`, entry(1));
      const evicted = Math.max(0, i + 1 - free);
      expect(survivors.slice(0, evicted).filter((k) => cache.peek(k) !== undefined)).toEqual([]);
      expect(survivors.slice(evicted).every((k) => cache.peek(k) !== undefined)).toBe(true);
    }
    expect(cache.size).toBe(max);
  });
});

import { describe, expect, it } from 'vitest';
import { covers, cursorOf, earliestOf, hasPassed, laterOf } from '../../router/consumer-groups/cursors.js';
import { encodeCheckpoint, type Cursor } from '../../src/subscriptions/position.js';

const at = (entries: Record<string, number | 'done'>): Cursor => new Map(Object.entries(entries).map(([s, p]) => [s, p === 'done' ? 'done' : { tx: BigInt(p), position: BigInt(p) }]));
const plain = (c: Cursor) => Object.fromEntries([...c].map(([s, p]) => [s, p === 'done' ? 'done' : Number(p.position)]));

describe('cursor arithmetic', () => {
  it('takes the later position per shard, done beating any, and returns the same cursor when nothing moves', () => {
    expect(plain(laterOf(at({ a: 5, b: 9 }), at({ a: 7, c: 1, b: 'done' })))).toEqual({ a: 7, b: 'done', c: 1 });
    const a = at({ a: 5 });
    expect(laterOf(a, at({ a: 4 }))).toBe(a);
  });

  it('starts a shared subscription where no partition misses anything', () => {
    expect(plain(earliestOf([at({ a: 5, b: 9, d: 'done' }), at({ a: 7, b: 2, d: 3 }), at({ a: 6, b: 4, c: 1, d: 'done' })]))).toEqual({ a: 5, b: 2, d: 3 });
    expect(earliestOf([])).toEqual(new Map());
  });

  it('tells whether a cursor has passed an event', () => {
    const c = at({ a: 5, b: 'done' });
    expect(hasPassed(c, 'a', { tx: 5n, position: 5n })).toBe(true);
    expect(hasPassed(c, 'a', { tx: 6n, position: 6n })).toBe(false);
    expect(hasPassed(c, 'b', { tx: 99n, position: 99n })).toBe(true);
    expect(hasPassed(c, 'z', { tx: 1n, position: 1n })).toBe(false);
    expect(covers(at({ a: 5, b: 3 }), at({ a: 5 }))).toBe(true);
    expect(covers(at({ a: 5 }), at({ a: 5, b: 1 }))).toBe(false);
  });

  it('reads "" as the beginning and a token as its vector', () => {
    expect(cursorOf('').size).toBe(0);
    expect(plain(cursorOf(encodeCheckpoint(at({ a: 3, b: 'done' }))))).toEqual({ a: 3, b: 'done' });
  });
});

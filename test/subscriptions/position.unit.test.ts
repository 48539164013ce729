import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { comparePositions, decodeCheckpoint, encodeCheckpoint, formatPosition, parsePosition, START, type ShardPosition } from '../../src/subscriptions/position.js';
import { partitionOf } from '../../src/subscriptions/partition.js';
import { expectThrow } from '../support/expect-error.js';

describe('shard positions and checkpoint tokens', () => {
  it('orders positions by transaction, then position', () => {
    expect(comparePositions(parsePosition('10:99'), parsePosition('11:1'))).toBeLessThan(0);
    expect(comparePositions(parsePosition('11:2'), parsePosition('11:1'))).toBeGreaterThan(0);
    expect(comparePositions(parsePosition(''), START)).toBe(0);
    expect(formatPosition(parsePosition('18446744073709551615:9007199254740993'))).toBe('18446744073709551615:9007199254740993');
  });

  it('round-trips a cursor through its token, in any insertion order', () => {
    const cursor = new Map<string, ShardPosition | 'done'>([
      ['shard-2', parsePosition('7:8')],
      ['shard-0', 'done'],
      ['shard-10', START],
    ]);
    const token = encodeCheckpoint(cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCheckpoint(token)).toEqual(cursor);
    expect(encodeCheckpoint(new Map([...cursor].reverse()))).toBe(token);
  });

  it('refuses what it did not make with a validation error', () => {
    for (const bad of ['not a token!', Buffer.from('{"v":2,"s":{}}').toString('base64url'), Buffer.from('{"v":1,"s":{"a":"x:1"}}').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
      expectThrow(() => decodeCheckpoint(bad), ValidationError, bad);
    }
    expectThrow(() => parsePosition('1:'), ValidationError);
  });

  it('puts a stream in the same partition every time, spread over all of them', () => {
    expect(partitionOf('order-header-o1', 16)).toBe(partitionOf('order-header-o1', 16));
    const seen = new Set(Array.from({ length: 1000 }, (_, i) => partitionOf(`s-${i}`, 16)));
    expect(seen.size).toBe(16);
    expectThrow(() => partitionOf('s', 0), RangeError);
  });
});

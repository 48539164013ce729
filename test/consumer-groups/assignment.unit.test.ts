import { describe, expect, it } from 'vitest';
import { desiredPartitions } from '../../router/consumer-groups/assignment.js';

describe('desiredPartitions', () => {
  it('gives every partition to exactly one live member, balanced to within one', () => {
    const members = ['m-c', 'm-a', 'm-b'];
    const owned = members.map((m) => desiredPartitions(members, 16, m));
    expect(owned.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, p) => p));
    const sizes = owned.map((o) => o.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is the same whatever order the members are listed in (every router computes it alike)', () => {
    expect(desiredPartitions(['b', 'a', 'c'], 7, 'b')).toEqual(desiredPartitions(['c', 'b', 'a'], 7, 'b'));
    expect(desiredPartitions(['b', 'a', 'c'], 7, 'a')).toEqual([0, 3, 6]);
  });

  it('gives nothing to a member that is not live, and everything to a lone member', () => {
    expect(desiredPartitions(['a', 'b'], 4, 'z')).toEqual([]);
    expect(desiredPartitions(['a'], 4, 'a')).toEqual([0, 1, 2, 3]);
  });

  it('leaves members without partitions when there are more members than partitions', () => {
    const members = ['a', 'b', 'c'];
    expect(members.map((m) => desiredPartitions(members, 2, m))).toEqual([[0], [1], []]);
  });
});

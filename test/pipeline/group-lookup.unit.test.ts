import { describe, expect, it } from 'vitest';
import { GroupLookup } from '../../src/pipeline/group-lookup.js';
import { expectRejection } from '../support/expect-error.js';

describe('GroupLookup', () => {
  it('sends a lone lookup at once and coalesces the ones that arrive while it is in flight', async () => {
    const batches: string[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const lookup = new GroupLookup<string, number>(
      async (keys) => {
        batches.push(keys);
        if (batches.length === 1) await gate;
        return new Map(keys.filter((k) => k !== 'missing').map((k) => [k, k.length]));
      },
      { concurrency: 1 },
    );
    const first = lookup.get('a');
    const rest = ['bb', 'ccc', 'bb', 'missing'].map((k) => lookup.get(k));
    expect(batches).toEqual([['a']]);
    release();
    expect(await first).toBe(1);
    expect(await Promise.all(rest)).toEqual([2, 3, 2, undefined]);
    expect(batches).toEqual([['a'], ['bb', 'ccc', 'missing']]);
  });

  it('rejects every waiter of a failed batch and keeps serving later ones', async () => {
    let fail = true;
    const lookup = new GroupLookup<string, number>(async (keys) => {
      if (fail) throw new Error('down');
      return new Map(keys.map((k) => [k, 1]));
    });
    await expectRejection(lookup.get('x'), 'down');
    fail = false;
    expect(await lookup.get('x')).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { PartitionLedger, formatAckId, parseAckId } from '../../router/consumer-groups/ledger.js';
import { ValidationError } from '../../src/errors.js';
import type { Cursor } from '../../src/subscriptions/position.js';
import { expectThrow } from '../support/expect-error.js';

const at = (entries: Record<string, number | 'done'>): Cursor => new Map(Object.entries(entries).map(([s, p]) => [s, p === 'done' ? 'done' : { tx: BigInt(p), position: BigInt(p) }]));
const plain = (c: Cursor) => Object.fromEntries([...c].map(([s, p]) => [s, p === 'done' ? 'done' : Number(p.position)]));

describe('PartitionLedger', () => {
  it('acknowledges cumulatively: an ack covers every earlier delivery of the partition', () => {
    const l = new PartitionLedger(3);
    l.deliver(1, at({ s0: 1 }), 1000);
    l.deliver(2, at({ s0: 5 }), 2000);
    l.deliver(7, at({ s0: 9 }), 3000);
    expect(l.unacked).toBe(3);
    expect(l.oldestUnackedAtMs).toBe(1000);
    expect(l.ack(2)).toBe(2);
    expect(l.unacked).toBe(1);
    expect(plain(l.acked)).toEqual({ s0: 5 });
    expect(l.oldestUnackedAtMs).toBe(3000);
    expect(l.ack(2)).toBe(0);
    expect(l.ack(100)).toBe(1);
    expect(plain(l.acked)).toEqual({ s0: 9 });
    expect(l.oldestUnackedAtMs).toBeUndefined();
  });

  it('never moves its checkpoint backwards on a shard the event did not come from', () => {
    // The partition had passed s1:50 under its previous owner; a subscription started
    // at the members' earliest cursor hands it an event whose token says s1:10.
    const l = new PartitionLedger(0, at({ s0: 3, s1: 50 }));
    expect(l.hasDelivered('s1', { tx: 40n, position: 40n })).toBe(true);
    expect(l.hasDelivered('s0', { tx: 4n, position: 4n })).toBe(false);
    l.deliver(1, at({ s0: 4, s1: 10 }), 0);
    l.ack(1);
    expect(plain(l.acked)).toEqual({ s0: 4, s1: 50 });
  });

  it('reports a moved checkpoint once for writing, and again after a failed write', () => {
    const l = new PartitionLedger(0);
    expect(l.takeDirty()).toBeUndefined();
    l.deliver(1, at({ s0: 1 }), 0);
    expect(l.takeDirty()).toBeUndefined();
    l.ack(1);
    expect(plain(l.takeDirty()!)).toEqual({ s0: 1 });
    expect(l.takeDirty()).toBeUndefined();
    l.markDirty();
    expect(plain(l.takeDirty()!)).toEqual({ s0: 1 });
  });

  it('lets a quiet partition follow the subscription, but not past a pending delivery', () => {
    const l = new PartitionLedger(0, at({ s0: 1 }));
    expect(l.passIdle(at({ s0: 8, s1: 2 }))).toBe(true);
    expect(plain(l.acked)).toEqual({ s0: 8, s1: 2 });
    expect(l.passIdle(at({ s0: 8 }))).toBe(false);
    l.deliver(1, at({ s0: 9 }), 0);
    expect(l.passIdle(at({ s0: 20 }))).toBe(false);
    expect(plain(l.acked)).toEqual({ s0: 8, s1: 2 });
    l.ack(1);
    expect(plain(l.acked)).toEqual({ s0: 9, s1: 2 });
  });

  it('keeps working through many deliveries (its queue is compacted)', () => {
    const l = new PartitionLedger(0);
    for (let i = 1; i <= 5000; i++) {
      l.deliver(i, at({ s0: i }), i);
      if (i % 3 === 0) l.ack(i - 1);
    }
    expect(l.unacked).toBe(3); // 4998..5000: the last ack (at 4998) covered 4997
    expect(l.ack(5000)).toBe(3);
    expect(plain(l.acked)).toEqual({ s0: 5000 });
  });
});

describe('ack ids', () => {
  it('round-trip, and anything else is INVALID_ARGUMENT', () => {
    expect(parseAckId(formatAckId(17, 123456))).toEqual({ partition: 17, seq: 123456 });
    for (const bad of ['', '1', '1.', 'x.1', '1.2.3', '-1.2']) expectThrow(() => parseAckId(bad), ValidationError);
  });
});

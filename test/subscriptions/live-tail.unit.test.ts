/**
 * The live tail's shared reads: subscribers with the same filter at the same
 * place share what the first one made of the rows, until new rows arrive.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LiveTail } from '../../src/subscriptions/live-tail.js';
import { START, comparePositions, type ShardPosition } from '../../src/subscriptions/position.js';
import type { FeedRow, PgFeedReader } from '../../src/store/pg-feed-reader.js';

const row = (n: number): FeedRow => ({
  at: { tx: BigInt(n), position: BigInt(n) },
  streamId: `order-header-o${n}`,
  version: 1,
  type: 'OrderPlaced',
  schemaVersion: 1,
  data: '{}',
  metadata: '{}',
  recordedAt: new Date(),
  eventId: `e${n}`,
  origin: undefined,
  bytes: 100,
});

/** A store whose committed rows the test appends to. */
function store() {
  const rows: FeedRow[] = [];
  const reader = {
    tail: async () => START,
    page: async (after: ShardPosition, max: number) => rows.filter((r) => comparePositions(r.at, after) > 0).slice(0, max),
  } as unknown as PgFeedReader;
  return { rows, reader };
}

const eventually = (check: () => boolean) => vi.waitFor(() => expect(check()).toBe(true), { timeout: 2000, interval: 5 });

const tails: LiveTail[] = [];
const detachers: (() => void)[] = [];
afterEach(() => {
  for (const d of detachers.splice(0)) d();
  tails.length = 0;
});

async function running(reader: PgFeedReader, options: { maxEvents?: number } = {}): Promise<LiveTail> {
  const tail = new LiveTail(reader, { pollMs: 5, ...options });
  tails.push(tail);
  detachers.push(tail.attach());
  await eventually(() => tail.covers(START));
  return tail;
}

describe('LiveTail.afterShared', () => {
  it('makes once for readers with the same key at the same place, again for another key or place', async () => {
    const s = store();
    s.rows.push(row(1), row(2), row(3));
    const tail = await running(s.reader);
    await eventually(() => tail.after(START, 10) !== 'behind' && (tail.after(START, 10) as FeedRow[]).length === 3);

    let made = 0;
    const make = (rows: FeedRow[]) => ({ n: ++made, rows: rows.length });
    const a = tail.afterShared(START, 10, 'all', make);
    const b = tail.afterShared({ tx: 0n, position: 0n }, 10, 'all', make);
    expect(a).not.toBe('behind');
    expect(b).toBe(a);
    expect(made).toBe(1);

    const other = tail.afterShared(START, 10, 'order-header', make);
    expect(other).not.toBe(a);
    expect(made).toBe(2);
    const later = tail.afterShared(row(1).at, 10, 'all', make);
    expect(later !== 'behind' && later !== 'none' && later.rows.map((r) => r.eventId)).toEqual(['e2', 'e3']);
    expect(made).toBe(3);
  });

  it('makes anew once new rows arrived, so no reader misses them', async () => {
    const s = store();
    s.rows.push(row(1));
    const tail = await running(s.reader);
    await eventually(() => (tail.after(START, 10) as FeedRow[]).length === 1);
    const make = (rows: FeedRow[]) => rows.map((r) => r.eventId);
    const first = tail.afterShared(START, 10, 'all', make);
    expect(first !== 'behind' && first !== 'none' && first.made).toEqual(['e1']);

    s.rows.push(row(2));
    tail.notify();
    await eventually(() => (tail.after(START, 10) as FeedRow[]).length === 2);
    const second = tail.afterShared(START, 10, 'all', make);
    expect(second !== 'behind' && second !== 'none' && second.made).toEqual(['e1', 'e2']);
  });

  it("says 'none' when nothing follows, and 'behind' when the buffer moved past the reader", async () => {
    const s = store();
    const tail = await running(s.reader, { maxEvents: 2 });
    s.rows.push(row(1), row(2), row(3));
    tail.notify();
    await eventually(() => !tail.covers(START));
    expect(tail.afterShared(row(3).at, 10, 'all', () => 0)).toBe('none');
    expect(tail.afterShared(START, 10, 'all', () => 0)).toBe('behind');
  });
});

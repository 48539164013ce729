import { describe, expect, it } from 'vitest';
import { entryOutcomes, factsByKind, type AppendBatchFact } from '../../src/store/append-batch-sql.js';
import { expectThrow } from '../support/expect-error.js';

const fence: AppendBatchFact = { kind: 'fence', fact: { epoch: '3', moving_epoch: null, recorded_at: '2026-12-06 10:39:10.123456+00' } };

describe("the append statement's facts", () => {
  it('puts the facts of each kind together per entry, whatever order the rows come in', () => {
    const rows: AppendBatchFact[] = [
      { kind: 'stream', fact: { stream_id: 's-b', version: '7', moved_at_epoch: '2' } },
      { kind: 'appended', fact: { stream_id: 's-a', positions: ['10', '11'] } },
      { kind: 'duplicate', fact: { ord: 3, command_id: 'c-1' } },
      fence,
      { kind: 'stream', fact: { stream_id: 's-a', version: '4', moved_at_epoch: null } },
    ];
    const [a, b, c] = entryOutcomes(['s-a', 's-b', 's-c'], factsByKind(rows));
    const common = { fenceEpoch: '3', movingEpoch: null, recordedAt: new Date(Date.UTC(2026, 11, 6, 10, 39, 10, 123)) };
    expect(a).toEqual({ ...common, duplicateCommandId: null, positions: ['10', '11'], currentVersion: '4', movedAtEpoch: null });
    expect(b).toEqual({ ...common, duplicateCommandId: null, positions: null, currentVersion: '7', movedAtEpoch: '2' });
    expect(c).toEqual({ ...common, duplicateCommandId: 'c-1', positions: null, currentVersion: null, movedAtEpoch: null });
  });

  it('refuses a result without the fence row (a store that was not migrated)', () => {
    expectThrow(() => entryOutcomes(['s-a'], factsByKind([])), /shard_fence has no row/);
  });
});

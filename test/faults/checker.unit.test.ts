/**
 * The checker is what makes the fault scenarios mean anything: given a ledger
 * and the stores, it must find every kind of damage. Each case plants one.
 */
import { describe, expect, it } from 'vitest';
import { checkSnapshot, type StoreSnapshot, type StoredEventRow } from '../support/checker.js';
import { Ledger, type CommandRecord, type CommandState, type LoadMethod } from '../support/ledger.js';

const PREFIX = 'run';

function ledgerWith(commands: { id: string; stream: string; state: CommandState; version?: number; method?: LoadMethod }[]): Ledger {
  const ledger = new Ledger(PREFIX);
  for (const c of commands) {
    const record: CommandRecord = {
      commandId: c.id,
      orderId: 'o1',
      method: c.method ?? 'UpdateShippingAddress',
      streamId: c.stream,
      expectedEvents: 1,
      shard: 'shard-0',
      attempts: [{ sentAt: 0, ms: 1, deadlineMs: 1000, code: c.state === 'acked' ? 'OK' : 'UNAVAILABLE' }],
      state: c.state,
    };
    if (c.state === 'acked') {
      record.ack = { commandId: c.id, orderId: 'o1', method: record.method, streamId: c.stream, version: c.version!, events: 1, duplicate: false, at: 0, attempt: 1 };
      ledger.acks.push(record.ack);
    }
    ledger.commands.set(c.id, record);
  }
  return ledger;
}

/** A store holding `events` (shard, stream, version, command id), with matching streams and command_results rows. */
function storeWith(events: [string, string, number, string | undefined][]): StoreSnapshot {
  const rows: StoredEventRow[] = events.map(([shard, streamId, version, commandId], i) => ({
    shard,
    streamId,
    version,
    type: 'E',
    position: BigInt(i + 1),
    commandId,
  }));
  const streams: StoreSnapshot['streams'] = new Map();
  const commandResults: StoreSnapshot['commandResults'] = new Map();
  for (const e of rows) {
    let byShard = streams.get(e.streamId);
    if (!byShard) streams.set(e.streamId, (byShard = new Map()));
    byShard.set(e.shard, { version: Math.max(e.version, byShard.get(e.shard)?.version ?? 0), moved: false });
    if (e.commandId) commandResults.set(`${e.shard}\u0000${e.streamId}\u0000${e.commandId}`, { first: e.version, last: e.version });
  }
  return { events: rows, streams, commandResults };
}

const S = 'order-header-run-c0-o0';

describe('the checker', () => {
  it('passes a store that holds exactly what the ledger says', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1, method: 'PlaceOrder' },
      { id: 'run-2', stream: S, state: 'acked', version: 2 },
      { id: 'run-3', stream: S, state: 'unknown' },
      { id: 'run-4', stream: S, state: 'unknown' },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 2, 'run-2'], ['shard-0', S, 3, 'run-3']]), ledger);
    expect(result).toMatchObject({ lost: 0, duplicated: 0, violations: [], unknownCommitted: 1 });
  });

  it('counts an acknowledged command without events as lost', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'acked', version: 2 },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1']]), ledger);
    expect(result.lost).toBe(1);
    expect(result.violations.join('\n')).toContain('run-2');
  });

  it('counts a command id whose events exist twice as duplicated, on one stream or across shards', () => {
    const ledger = ledgerWith([{ id: 'run-1', stream: S, state: 'acked', version: 1 }]);
    expect(checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 2, 'run-1']]), ledger).duplicated).toBe(1);
    expect(checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-1', S, 1, 'run-1']]), ledger).duplicated).toBe(1);
  });

  it('finds a gap in a stream, and a streams row that disagrees with the events', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-3', stream: S, state: 'acked', version: 3 },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 3, 'run-3']]), ledger);
    expect(result.violations.some((v) => v.includes('not 1..2'))).toBe(true);
    expect(result.violations.some((v) => v.includes('version 3 in streams but has 2 events'))).toBe(true);
  });

  it('finds a stream that lives on two shards', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'unknown' },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-1', S, 1, 'run-2']]), ledger);
    expect(result.violations.some((v) => v.includes('exists on 2 shards'))).toBe(true);
  });

  it('finds an event no command of the run caused, and one without a command id', () => {
    const ledger = ledgerWith([{ id: 'run-1', stream: S, state: 'acked', version: 1 }]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 2, 'run-99'], ['shard-0', S, 3, undefined]]), ledger);
    expect(result.violations.some((v) => v.includes('run-99, which the driver never sent'))).toBe(true);
    expect(result.violations.some((v) => v.includes('carries no command id'))).toBe(true);
  });

  it('finds the events of a command the service refused', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'refused' },
      { id: 'run-3', stream: S, state: 'not-written' },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 2, 'run-2'], ['shard-0', S, 3, 'run-3']]), ledger);
    expect(result.violations.filter((v) => v.includes('yet its events exist'))).toHaveLength(2);
  });

  it('finds an acknowledgement that names another version than the store holds', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 2 },
      { id: 'run-2', stream: S, state: 'unknown' },
    ]);
    const result = checkSnapshot(storeWith([['shard-0', S, 1, 'run-1'], ['shard-0', S, 2, 'run-2']]), ledger);
    expect(result.violations.some((v) => v.includes(`acknowledged at ${S}@2, stored at ${S}@1`))).toBe(true);
  });

  it('finds command_results that disagree with the events', () => {
    const ledger = ledgerWith([{ id: 'run-1', stream: S, state: 'acked', version: 1 }]);
    const snapshot = storeWith([['shard-0', S, 1, 'run-1']]);
    snapshot.commandResults.set(`shard-0\u0000${S}\u0000run-1`, { first: 1, last: 2 });
    expect(checkSnapshot(snapshot, ledger).violations.some((v) => v.includes('command_results says run-1'))).toBe(true);
  });
});

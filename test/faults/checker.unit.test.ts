/**
 * The checker is what makes the fault scenarios mean anything: given a ledger
 * and the stores, it must find every kind of damage. Each case plants one.
 */
import { describe, expect, it } from 'vitest';
import { checkSnapshot, type StoreSnapshot, type StoredEventRow } from '../support/checker.js';
import { Ledger, type Attempt, type CommandRecord, type CommandState, type ExpectedError, type LoadMethod } from '../support/ledger.js';

const PREFIX = 'run';

interface PlannedCommand {
  id: string;
  stream: string;
  state: CommandState;
  version?: number;
  method?: LoadMethod;
  /** Events the command appends; default 1. */
  events?: number;
  /** Its attempts; default one: OK when acked, else UNAVAILABLE, sent at `sentAt` and answered 1 ms later. */
  attempts?: Attempt[];
  sentAt?: number;
}

/** The scenarios' usual allowance: an unknown outcome now and then. */
const ALLOW_UNAVAILABLE: ExpectedError[] = ['UNAVAILABLE'];

function ledgerWith(commands: PlannedCommand[], expected: readonly ExpectedError[] = ALLOW_UNAVAILABLE): Ledger {
  const ledger = new Ledger(PREFIX, expected);
  for (const c of commands) {
    const sentAt = c.sentAt ?? 0;
    const attempts = c.attempts ?? [{ sentAt, ms: 1, deadlineMs: 1000, code: c.state === 'acked' ? 'OK' : 'UNAVAILABLE' }];
    const record: CommandRecord = {
      commandId: c.id,
      orderId: 'o1',
      method: c.method ?? 'UpdateShippingAddress',
      streamId: c.stream,
      expectedEvents: c.events ?? 1,
      shard: 'shard-0',
      attempts,
      state: c.state,
    };
    if (c.state === 'acked') {
      const last = attempts[attempts.length - 1]!;
      record.ack = {
        commandId: c.id,
        orderId: 'o1',
        method: record.method,
        streamId: c.stream,
        version: c.version!,
        events: c.events ?? 1,
        duplicate: last.duplicate ?? false,
        at: last.sentAt + last.ms,
        attempt: attempts.length,
      };
      ledger.acks.push(record.ack);
    }
    ledger.commands.set(c.id, record);
  }
  return ledger;
}

/**
 * A store holding `events` (shard, stream, version, command id), at positions 1, 2, … in the order
 * given, with matching streams and command_results rows.
 */
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
    if (e.commandId) {
      const key = `${e.shard}\u0000${e.streamId}\u0000${e.commandId}`;
      const known = commandResults.get(key);
      commandResults.set(key, { first: Math.min(e.version, known?.first ?? e.version), last: Math.max(e.version, known?.last ?? e.version) });
    }
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
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-2'],
        ['shard-0', S, 3, 'run-3'],
      ]),
      ledger,
    );
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
    expect(
      checkSnapshot(
        storeWith([
          ['shard-0', S, 1, 'run-1'],
          ['shard-0', S, 2, 'run-1'],
        ]),
        ledger,
      ).duplicated,
    ).toBe(1);
    expect(
      checkSnapshot(
        storeWith([
          ['shard-0', S, 1, 'run-1'],
          ['shard-1', S, 1, 'run-1'],
        ]),
        ledger,
      ).duplicated,
    ).toBe(1);
  });

  it('finds a gap in a stream, and a streams row that disagrees with the events', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-3', stream: S, state: 'acked', version: 3 },
    ]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 3, 'run-3'],
      ]),
      ledger,
    );
    expect(result.violations.some((v) => v.includes('not 1..2'))).toBe(true);
    expect(result.violations.some((v) => v.includes('version 3 in streams but has 2 events'))).toBe(true);
  });

  it('finds a stream that lives on two shards', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'unknown' },
    ]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-1', S, 1, 'run-2'],
      ]),
      ledger,
    );
    expect(result.violations.some((v) => v.includes('exists on 2 shards'))).toBe(true);
  });

  it('finds an event no command of the run caused, and one without a command id', () => {
    const ledger = ledgerWith([{ id: 'run-1', stream: S, state: 'acked', version: 1 }]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-99'],
        ['shard-0', S, 3, undefined],
      ]),
      ledger,
    );
    expect(result.violations.some((v) => v.includes('run-99, which the driver never sent'))).toBe(true);
    expect(result.violations.some((v) => v.includes('carries no command id'))).toBe(true);
  });

  it('finds the events of a command the service refused', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'refused' },
      { id: 'run-3', stream: S, state: 'not-written' },
    ]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-2'],
        ['shard-0', S, 3, 'run-3'],
      ]),
      ledger,
    );
    expect(result.violations.filter((v) => v.includes('yet its events exist'))).toHaveLength(2);
  });

  it('finds an acknowledgement that names another version than the store holds', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 2 },
      { id: 'run-2', stream: S, state: 'unknown' },
    ]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-2'],
      ]),
      ledger,
    );
    expect(result.violations.some((v) => v.includes(`acknowledged at ${S}@2, stored at ${S}@1`))).toBe(true);
  });

  it('finds command_results that disagree with the events', () => {
    const ledger = ledgerWith([{ id: 'run-1', stream: S, state: 'acked', version: 1 }]);
    const snapshot = storeWith([['shard-0', S, 1, 'run-1']]);
    snapshot.commandResults.set(`shard-0\u0000${S}\u0000run-1`, { first: 1, last: 2 });
    expect(checkSnapshot(snapshot, ledger).violations.some((v) => v.includes('command_results says run-1'))).toBe(true);
  });

  it('finds versions committed out of order, which sorting them would hide', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'unknown' },
      { id: 'run-2', stream: S, state: 'unknown' },
    ]);
    // Versions 1..2 both exist, but version 2 holds the lower position: it committed first.
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 2, 'run-2'],
        ['shard-0', S, 1, 'run-1'],
      ]),
      ledger,
    );
    expect(result.violations.some((v) => v.includes('committed out of order (I9)'))).toBe(true);
    // The same events in commit order pass.
    expect(
      checkSnapshot(
        storeWith([
          ['shard-0', S, 1, 'run-1'],
          ['shard-0', S, 2, 'run-2'],
        ]),
        ledger,
      ).violations,
    ).toEqual([]);
  });

  it('finds two events of a shard at one position', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1 },
      { id: 'run-2', stream: S, state: 'acked', version: 2 },
    ]);
    const snapshot = storeWith([
      ['shard-0', S, 1, 'run-1'],
      ['shard-0', S, 2, 'run-2'],
    ]);
    snapshot.events[1] = { ...snapshot.events[1]!, position: snapshot.events[0]!.position };
    expect(checkSnapshot(snapshot, ledger).violations.some((v) => v.includes('position 1 holds both'))).toBe(true);
  });

  it('finds a command acknowledged before another was sent that holds the later version', () => {
    const T = 'order-header-run-c0-o1';
    // run-1 was acknowledged at 11, run-2 first sent at 20: run-1 must hold the lower version and position.
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 2, sentAt: 10 },
      { id: 'run-2', stream: S, state: 'acked', version: 1, sentAt: 20 },
      { id: 'run-3', stream: T, state: 'acked', version: 1, sentAt: 10 },
      { id: 'run-4', stream: T, state: 'acked', version: 2, sentAt: 20 },
    ]);
    const swapped = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-2'],
        ['shard-0', S, 2, 'run-1'],
        ['shard-0', T, 1, 'run-3'],
        ['shard-0', T, 2, 'run-4'],
      ]),
      ledger,
    );
    const order = swapped.violations.filter((v) => v.includes('before run-'));
    expect(order.some((v) => v.includes('run-1 was acknowledged at 11 before run-2 was sent at 20') && v.includes('@2, not below 1'))).toBe(true);
    expect(order.some((v) => v.includes('position 2, not below 1'))).toBe(true);
    expect(order.some((v) => v.includes('run-3') || v.includes('run-4'))).toBe(false);
    // Commands that overlapped in time may commit in either order.
    const overlapping = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 2, sentAt: 10, attempts: [{ sentAt: 10, ms: 30, deadlineMs: 1000, code: 'OK' }] },
      { id: 'run-2', stream: S, state: 'acked', version: 1, sentAt: 20 },
    ]);
    expect(
      checkSnapshot(
        storeWith([
          ['shard-0', S, 1, 'run-2'],
          ['shard-0', S, 2, 'run-1'],
        ]),
        overlapping,
      ).violations,
    ).toEqual([]);
  });

  it('finds acknowledged positions out of order on a shard even when the versions agree', () => {
    const T = 'order-header-run-c0-o1';
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'acked', version: 1, sentAt: 10 },
      { id: 'run-2', stream: S, state: 'acked', version: 2, sentAt: 20 },
      { id: 'run-3', stream: T, state: 'acked', version: 1, sentAt: 10 },
    ]);
    const snapshot = storeWith([
      ['shard-0', S, 1, 'run-1'],
      ['shard-0', T, 1, 'run-3'],
      ['shard-0', S, 2, 'run-2'],
    ]);
    // Plant: run-2's event gets a position below run-1's.
    snapshot.events[0] = { ...snapshot.events[0]!, position: 5n };
    const result = checkSnapshot(snapshot, ledger);
    expect(result.violations.some((v) => v.includes('run-1 was acknowledged') && v.includes('position 5, not below 3'))).toBe(true);
  });

  it('finds a command with some but not all of its events (I3), whatever its outcome', () => {
    const ledger = ledgerWith([
      { id: 'run-1', stream: S, state: 'unknown', events: 2 },
      { id: 'run-2', stream: S, state: 'acked', version: 4, events: 2 },
      { id: 'run-3', stream: S, state: 'unknown', events: 2 },
    ]);
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-2'],
        ['shard-0', S, 3, 'run-2'],
        ['shard-0', S, 4, 'run-3'],
      ]),
      ledger,
    );
    expect(result.partial).toBe(2);
    expect(result.violations.filter((v) => v.includes('a partial append (I3)'))).toHaveLength(2);
    // All of them, or none, is fine.
    const whole = ledgerWith([
      { id: 'run-1', stream: S, state: 'unknown', events: 2 },
      { id: 'run-2', stream: S, state: 'unknown', events: 2 },
    ]);
    expect(
      checkSnapshot(
        storeWith([
          ['shard-0', S, 1, 'run-1'],
          ['shard-0', S, 2, 'run-1'],
        ]),
        whole,
      ),
    ).toMatchObject({ partial: 0, violations: [] });
  });

  it('finds an AddOrderLines command of the load that lost some of its lines (I3): acknowledged, or with an unknown outcome', () => {
    const L = 'order-lines-run-c0-o0';
    const ledger = ledgerWith([
      { id: 'run-1', stream: L, state: 'acked', version: 3, events: 3, method: 'AddOrderLines' },
      { id: 'run-2', stream: L, state: 'unknown', events: 4, method: 'AddOrderLines' },
      { id: 'run-3', stream: L, state: 'acked', version: 6, events: 2, method: 'AddOrderLines', sentAt: 10 },
    ]);
    // The store lost run-1's third line and kept only run-2's first: each stream still reads 1..n, without a gap.
    const damaged = storeWith([
      ['shard-0', L, 1, 'run-1'],
      ['shard-0', L, 2, 'run-1'],
      ['shard-0', L, 3, 'run-2'],
      ['shard-0', L, 4, 'run-3'],
      ['shard-0', L, 5, 'run-3'],
    ]);
    const result = checkSnapshot(damaged, ledger);
    expect(result.partial).toBe(2);
    expect(result.violations.filter((v) => v.includes('a partial append (I3)')).map((v) => v.split(' ')[1])).toEqual(['run-1', 'run-2']);
    // Whole commands pass: every line of run-1, none of run-2.
    const whole = storeWith([
      ['shard-0', L, 1, 'run-1'],
      ['shard-0', L, 2, 'run-1'],
      ['shard-0', L, 3, 'run-1'],
      ['shard-0', L, 4, 'run-3'],
      ['shard-0', L, 5, 'run-3'],
    ]);
    const fine = ledgerWith([
      { id: 'run-1', stream: L, state: 'acked', version: 3, events: 3, method: 'AddOrderLines' },
      { id: 'run-2', stream: L, state: 'unknown', events: 4, method: 'AddOrderLines' },
      { id: 'run-3', stream: L, state: 'acked', version: 5, events: 2, method: 'AddOrderLines', sentAt: 10 },
    ]);
    expect(checkSnapshot(whole, fine)).toMatchObject({ partial: 0, lost: 0, violations: [] });
  });

  it('reports every error answer the scenario did not expect, a refusal or a failure alike', () => {
    const refused = (code: string, reason?: string): PlannedCommand['attempts'] => [{ sentAt: 0, ms: 1, deadlineMs: 1000, code, reason }];
    const commands: PlannedCommand[] = [
      { id: 'run-1', stream: S, state: 'refused', attempts: refused('NOT_FOUND', 'AGGREGATE_NOT_FOUND') },
      { id: 'run-2', stream: S, state: 'refused', attempts: refused('FAILED_PRECONDITION', 'BUSINESS_RULE') },
      { id: 'run-3', stream: S, state: 'unknown', attempts: refused('INTERNAL') },
      { id: 'run-4', stream: S, state: 'unknown', attempts: refused('UNKNOWN') },
      { id: 'run-5', stream: S, state: 'unknown', attempts: refused('UNAVAILABLE', 'STORE_UNAVAILABLE') },
    ];
    const strict = checkSnapshot(storeWith([]), ledgerWith(commands, []));
    const unexpected = strict.violations.filter((v) => v.includes('unexpected'));
    expect(unexpected).toHaveLength(5);
    expect(unexpected.find((v) => v.includes('run-1'))).toContain('NOT_FOUND/AGGREGATE_NOT_FOUND (refused)');
    expect(unexpected.find((v) => v.includes('run-3'))).toContain('INTERNAL (failure)');
    // What a scenario declares is accepted, by code, by code and reason, and only where it says.
    const declared: ExpectedError[] = ['UNAVAILABLE/STORE_UNAVAILABLE', 'INTERNAL', { error: 'NOT_FOUND/AGGREGATE_NOT_FOUND', when: (c) => c.commandId === 'run-1' }];
    const lenient = checkSnapshot(storeWith([]), ledgerWith(commands, declared)).violations;
    expect(lenient.filter((v) => v.includes('unexpected')).map((v) => v.split(' ')[1])).toEqual(['run-2', 'run-4']);
  });

  it('finds a duplicate answer that no earlier attempt can explain', () => {
    const tries = (...codes: string[]): Attempt[] => codes.map((code, i) => ({ sentAt: i * 10, ms: 1, deadlineMs: 1000, code, duplicate: code === 'OK' ? true : undefined }));
    const ledger = ledgerWith(
      [
        // Refused before anything was written, then "already applied": something wrote it after all.
        { id: 'run-1', stream: S, state: 'acked', version: 1, attempts: tries('RESOURCE_EXHAUSTED', 'OK') },
        // A fresh command id answered duplicate at once.
        { id: 'run-2', stream: S, state: 'acked', version: 2, attempts: tries('OK') },
        // An unknown outcome, then duplicate: the first try committed. Fine.
        { id: 'run-3', stream: S, state: 'acked', version: 3, attempts: tries('UNAVAILABLE', 'OK') },
      ],
      ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'],
    );
    const result = checkSnapshot(
      storeWith([
        ['shard-0', S, 1, 'run-1'],
        ['shard-0', S, 2, 'run-2'],
        ['shard-0', S, 3, 'run-3'],
      ]),
      ledger,
    );
    const found = result.violations.filter((v) => v.includes('no earlier attempt could have written it'));
    expect(found.map((v) => v.split(' ')[1])).toEqual(['run-1', 'run-2']);
  });
});

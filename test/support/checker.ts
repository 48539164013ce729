/**
 * Reads every shard's event store after a run and proves the ledger of a load
 * run (`ledger.ts`) against it:
 *
 * 1. every acknowledged command's events exist exactly once, at the version
 *    the acknowledgement gave (else it is *lost*);
 * 2. every stream's versions are 1..n without a gap or a duplicate, in
 *    position order — read as committed, never sorted first, so a later
 *    version at a lower position (I9) is found — and its `streams` row says n;
 *    no two events of a shard share a position;
 * 3. no stream exists on two shards (a copy sealed by a move, `moved_at_epoch`
 *    set, does not count);
 * 4. no event exists that no command caused: every event carries the command
 *    id of a command the driver sent whose outcome allows it (acknowledged or
 *    unknown — never one that was refused);
 * 5. a command id appears in at most one command's worth of events, on one
 *    stream — retries with the same command id never duplicated anything (else
 *    it is *duplicated*) — and `command_results` agrees with the events;
 * 6. a command's events exist all or none (I3): never fewer than it appends;
 * 7. acknowledgements are ordered: a command acknowledged before another was
 *    first sent has lower versions on the same stream, and lower positions
 *    when both are on one shard;
 * 8. the ledger holds no finding (`Ledger.unexpected()`): every error answer
 *    was one the scenario expects, every `duplicate` is explained.
 */
import pg from 'pg';
import type { CommandRecord, Ledger } from './ledger.js';

/** One shard's store to read: a name for messages and its database URL. */
export interface ShardStore {
  readonly shard: string;
  readonly url: string;
}

export interface StoredEventRow {
  readonly shard: string;
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly position: bigint;
  readonly commandId: string | undefined;
}

export interface StoreSnapshot {
  readonly events: StoredEventRow[];
  /** stream id → shard → { version, moved } from the `streams` table. */
  readonly streams: Map<string, Map<string, { version: number; moved: boolean }>>;
  /** `${shard}\u0000${stream}\u0000${command}` → versions from `command_results`. */
  readonly commandResults: Map<string, { first: number; last: number }>;
}

export interface CheckResult {
  /** Acknowledged commands whose events are missing. */
  readonly lost: number;
  /** Command ids whose events exist more than once (or more events than the command appends). */
  readonly duplicated: number;
  /** Every problem found, one sentence each (empty = all properties hold). */
  readonly violations: string[];
  /** Events read, over all shards. */
  readonly events: number;
  readonly streams: number;
  /** Commands with an unknown outcome whose events do exist (they committed). */
  readonly unknownCommitted: number;
  /** Commands with some but not all of their events (I3). */
  readonly partial: number;
}

/** Reads events, streams and command results of every store. */
export async function readStores(stores: readonly ShardStore[]): Promise<StoreSnapshot> {
  const events: StoredEventRow[] = [];
  const streams = new Map<string, Map<string, { version: number; moved: boolean }>>();
  const commandResults = new Map<string, { first: number; last: number }>();
  for (const store of stores) {
    const client = new pg.Client({ connectionString: store.url });
    client.on('error', () => {});
    await client.connect();
    try {
      const ev = await client.query<{ stream_id: string; version: string; type: string; position: string; command_id: string | null }>(
        `SELECT stream_id, version::text, type, position::text, metadata->>'command_id' AS command_id FROM events ORDER BY position`,
      );
      for (const r of ev.rows) {
        events.push({
          shard: store.shard,
          streamId: r.stream_id,
          version: Number(r.version),
          type: r.type,
          position: BigInt(r.position),
          commandId: r.command_id ?? undefined,
        });
      }
      const st = await client.query<{ stream_id: string; version: string; moved: boolean }>('SELECT stream_id, version::text, moved_at_epoch IS NOT NULL AS moved FROM streams');
      for (const r of st.rows) {
        let byShard = streams.get(r.stream_id);
        if (!byShard) streams.set(r.stream_id, (byShard = new Map()));
        byShard.set(store.shard, { version: Number(r.version), moved: r.moved });
      }
      const cr = await client.query<{ stream_id: string; command_id: string; first_version: string; last_version: string }>(
        'SELECT stream_id, command_id, first_version::text, last_version::text FROM command_results',
      );
      for (const r of cr.rows) {
        commandResults.set(`${store.shard}\u0000${r.stream_id}\u0000${r.command_id}`, {
          first: Number(r.first_version),
          last: Number(r.last_version),
        });
      }
    } finally {
      await client.end();
    }
  }
  return { events, streams, commandResults };
}

/**
 * Checks the structural properties (2, 3 and the `command_results` half of 5)
 * that hold for any store, whatever wrote it. Appends to `violations`.
 */
export function checkStructure(snapshot: StoreSnapshot, violations: string[]): void {
  const byShardStream = new Map<string, StoredEventRow[]>();
  for (const e of snapshot.events) {
    const key = `${e.shard}\u0000${e.streamId}`;
    let list = byShardStream.get(key);
    if (!list) byShardStream.set(key, (list = []));
    list.push(e);
  }
  const positions = new Map<string, StoredEventRow>();
  for (const e of snapshot.events) {
    const key = `${e.shard}\u0000${e.position}`;
    const other = positions.get(key);
    if (other) violations.push(`${e.shard}: position ${e.position} holds both ${other.streamId}@${other.version} and ${e.streamId}@${e.version}`);
    else positions.set(key, e);
  }
  for (const [key, unordered] of byShardStream) {
    const [shard, streamId] = key.split('\u0000') as [string, string];
    // In commit order: position order is commit order (I9), so version n+1 must come after version n.
    const list = [...unordered].sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    const versions = list.map((e) => e.version);
    const mismatch = versions.findIndex((v, i) => v !== i + 1);
    if (mismatch >= 0) {
      const sorted = [...versions].sort((a, b) => a - b);
      if (sorted.every((v, i) => v === i + 1)) {
        const e = list[mismatch]!;
        violations.push(`${shard}: stream ${streamId} has versions [${abbreviate(versions)}] in position order: ${e.streamId}@${e.version} at position ${e.position} committed out of order (I9)`);
      } else {
        violations.push(`${shard}: stream ${streamId} has versions [${abbreviate(versions)}], not 1..${versions.length}`);
      }
    }
    const row = snapshot.streams.get(streamId)?.get(shard);
    if (!row) violations.push(`${shard}: stream ${streamId} has events but no streams row`);
    else if (row.version !== versions.length) {
      violations.push(`${shard}: stream ${streamId} is at version ${row.version} in streams but has ${versions.length} events`);
    }
  }
  for (const [streamId, byShard] of snapshot.streams) {
    for (const [shard, row] of byShard) {
      if (row.version > 0 && !byShardStream.has(`${shard}\u0000${streamId}`)) {
        violations.push(`${shard}: stream ${streamId} is at version ${row.version} but has no events`);
      }
    }
    const live = [...byShard].filter(([, r]) => !r.moved).map(([s]) => s);
    if (live.length > 1) violations.push(`stream ${streamId} exists on ${live.length} shards: ${live.join(', ')}`);
  }
  // command_results must describe exactly the events carrying that command id on that stream.
  const groups = groupByCommand(snapshot.events);
  for (const [key, r] of snapshot.commandResults) {
    const [shard, streamId, commandId] = key.split('\u0000') as [string, string, string];
    const evs = groups.get(commandId)?.filter((e) => e.shard === shard && e.streamId === streamId) ?? [];
    const versions = evs.map((e) => e.version).sort((a, b) => a - b);
    if (versions.length !== r.last - r.first + 1 || versions[0] !== r.first || versions[versions.length - 1] !== r.last) {
      violations.push(`${shard}: command_results says ${commandId} wrote ${streamId}@${r.first}..${r.last}, the events say [${abbreviate(versions)}]`);
    }
  }
}

/** Events by command id (events without one are left out). */
export function groupByCommand(events: readonly StoredEventRow[]): Map<string, StoredEventRow[]> {
  const out = new Map<string, StoredEventRow[]>();
  for (const e of events) {
    if (e.commandId === undefined) continue;
    let list = out.get(e.commandId);
    if (!list) out.set(e.commandId, (list = []));
    list.push(e);
  }
  return out;
}

/**
 * Proves `ledger` against the stores: properties 1–5. Only events of the
 * ledger's run are judged against it (their command ids start with the
 * ledger's prefix); structural checks cover every event.
 */
export async function checkStores(stores: readonly ShardStore[], ledger: Ledger): Promise<CheckResult> {
  const snapshot = await readStores(stores);
  return checkSnapshot(snapshot, ledger);
}

export function checkSnapshot(snapshot: StoreSnapshot, ledger: Ledger): CheckResult {
  const violations: string[] = [];
  checkStructure(snapshot, violations);
  const groups = groupByCommand(snapshot.events);
  let lost = 0;
  let duplicated = 0;
  let unknownCommitted = 0;
  const ours = `${ledger.prefix}-`;

  // 4: every event of this run was caused by a command the driver sent.
  for (const e of snapshot.events) {
    if (e.commandId === undefined) {
      if (e.streamId.includes(ours)) violations.push(`${e.shard}: ${e.streamId}@${e.version} (${e.type}) carries no command id`);
      continue;
    }
    if (!e.commandId.startsWith(ours)) continue;
    if (!ledger.commands.has(e.commandId)) {
      violations.push(`${e.shard}: ${e.streamId}@${e.version} carries command id ${e.commandId}, which the driver never sent`);
    }
  }

  let partial = 0;
  for (const record of ledger.commands.values()) {
    const evs = groups.get(record.commandId) ?? [];
    const problem = judge(record, evs);
    if (problem.kind === 'lost') lost++;
    if (problem.kind === 'duplicated') duplicated++;
    if (problem.kind === 'partial') partial++;
    if (problem.message) violations.push(problem.message);
    if ((record.state === 'unknown' || record.state === 'in-flight') && evs.length > 0) unknownCommitted++;
  }
  checkAckOrder(ledger, groups, violations);
  // 8: how the service answered.
  violations.push(...ledger.unexpected());
  const streams = new Set(snapshot.events.map((e) => e.streamId)).size;
  return { lost, duplicated, violations, events: snapshot.events.length, streams, unknownCommitted, partial };
}

/**
 * 7: a command acknowledged before another command of the same stream was
 * first sent must have committed before it, so its events have lower versions
 * and (on one shard) lower positions. Sweeps the stream's commands in the
 * order they were first sent, folding in every acknowledgement that arrived
 * before; commands whose events are not all where they belong are judged
 * elsewhere and skipped here.
 */
function checkAckOrder(ledger: Ledger, groups: Map<string, StoredEventRow[]>, violations: string[]): void {
  interface Written {
    readonly record: CommandRecord;
    readonly sentAt: number;
    readonly ackAt: number | undefined;
    readonly shard: string;
    readonly minVersion: number;
    readonly maxVersion: number;
    readonly minPosition: bigint;
    readonly maxPosition: bigint;
  }
  const byStream = new Map<string, Written[]>();
  for (const record of ledger.commands.values()) {
    const evs = groups.get(record.commandId) ?? [];
    const first = record.attempts[0];
    if (evs.length === 0 || !first || new Set(evs.map((e) => e.shard)).size > 1 || evs.some((e) => e.streamId !== record.streamId)) continue;
    const versions = evs.map((e) => e.version);
    const positions = evs.map((e) => e.position);
    const written: Written = {
      record,
      sentAt: first.sentAt,
      ackAt: record.state === 'acked' ? record.ack!.at : undefined,
      shard: evs[0]!.shard,
      minVersion: Math.min(...versions),
      maxVersion: Math.max(...versions),
      minPosition: positions.reduce((a, b) => (b < a ? b : a)),
      maxPosition: positions.reduce((a, b) => (b > a ? b : a)),
    };
    let list = byStream.get(record.streamId);
    if (!list) byStream.set(record.streamId, (list = []));
    list.push(written);
  }
  for (const list of byStream.values()) {
    const bySent = [...list].sort((a, b) => a.sentAt - b.sentAt);
    const byAck = list.filter((w) => w.ackAt !== undefined).sort((a, b) => a.ackAt! - b.ackAt!);
    let folded = 0;
    let latest: Written | undefined;
    const latestOnShard = new Map<string, Written>();
    for (const later of bySent) {
      while (folded < byAck.length && byAck[folded]!.ackAt! < later.sentAt) {
        const acked = byAck[folded++]!;
        if (!latest || acked.maxVersion > latest.maxVersion) latest = acked;
        const onShard = latestOnShard.get(acked.shard);
        if (!onShard || acked.maxPosition > onShard.maxPosition) latestOnShard.set(acked.shard, acked);
      }
      if (latest && latest.maxVersion >= later.minVersion) {
        violations.push(
          `command ${latest.record.commandId} was acknowledged at ${latest.ackAt} before ${later.record.commandId} was sent at ${later.sentAt}, ` +
            `yet holds ${later.record.streamId}@${latest.maxVersion}, not below ${later.minVersion}`,
        );
      }
      const before = latestOnShard.get(later.shard);
      if (before && before.maxPosition >= later.minPosition) {
        violations.push(
          `command ${before.record.commandId} was acknowledged at ${before.ackAt} before ${later.record.commandId} was sent at ${later.sentAt}, ` +
            `yet its events on ${later.shard} reach position ${before.maxPosition}, not below ${later.minPosition}`,
        );
      }
    }
  }
}

type Judgement = { kind: 'ok' | 'lost' | 'duplicated' | 'partial' | 'wrong'; message?: string };

function judge(record: CommandRecord, evs: readonly StoredEventRow[]): Judgement {
  const id = record.commandId;
  const shards = new Set(evs.map((e) => e.shard));
  const streams = new Set(evs.map((e) => e.streamId));
  const versions = evs.map((e) => e.version).sort((a, b) => a - b);
  if (evs.length > record.expectedEvents || shards.size > 1 || streams.size > 1) {
    return {
      kind: 'duplicated',
      message: `command ${id} (${record.method}, ${record.state}) has ${evs.length} events on ${[...shards].join('+')} ${[...streams].join('+')} @[${abbreviate(versions)}]; it appends ${record.expectedEvents}`,
    };
  }
  if (evs.length > 0 && (streams.values().next().value !== record.streamId || versions[versions.length - 1]! - versions[0]! !== evs.length - 1)) {
    return { kind: 'wrong', message: `command ${id} wrote ${[...streams].join()}@[${abbreviate(versions)}], expected ${record.streamId}` };
  }
  // I3, whatever the outcome: all of a command's events or none.
  if (evs.length > 0 && evs.length < record.expectedEvents) {
    return {
      kind: 'partial',
      message: `command ${id} (${record.method}, ${record.state}) has ${evs.length} of its ${record.expectedEvents} events at ${evs[0]!.shard}:${record.streamId}@[${abbreviate(versions)}]: a partial append (I3)`,
    };
  }
  switch (record.state) {
    case 'acked': {
      const ack = record.ack!;
      if (evs.length === 0) {
        return { kind: 'lost', message: `command ${id} (${record.method}) was acknowledged at ${ack.streamId}@${ack.version} but has no events` };
      }
      if (evs.length !== record.expectedEvents || ack.events !== evs.length) {
        return { kind: 'wrong', message: `command ${id}: acknowledged with ${ack.events} events, ${evs.length} stored, ${record.expectedEvents} expected` };
      }
      if (ack.streamId !== record.streamId || ack.version !== versions[versions.length - 1]) {
        return { kind: 'wrong', message: `command ${id}: acknowledged at ${ack.streamId}@${ack.version}, stored at ${evs[0]!.streamId}@${versions[versions.length - 1]}` };
      }
      return { kind: 'ok' };
    }
    case 'refused':
    case 'not-written':
      if (evs.length > 0) {
        const last = record.attempts[record.attempts.length - 1];
        return {
          kind: 'wrong',
          message: `command ${id} (${record.method}) ended ${record.state} (${last?.code}${last?.reason ? '/' + last.reason : ''}) yet its events exist at ${evs[0]!.shard}:${evs[0]!.streamId}@${versions.join(',')}`,
        };
      }
      return { kind: 'ok' };
    case 'unknown':
    case 'in-flight':
      return { kind: 'ok' };
  }
}

function abbreviate(versions: readonly number[]): string {
  if (versions.length <= 12) return versions.join(',');
  return `${versions.slice(0, 5).join(',')},…,${versions.slice(-5).join(',')} (${versions.length})`;
}

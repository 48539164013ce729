import pg from 'pg';
import type { AppendEntry, PendingMove } from './types.js';

/**
 * The parameters of {@link APPEND_BATCH_SQL}, by name. Arrays are parallel
 * per entry, per command with an id, or per event; an entry ordinal is 1-based.
 */
export interface AppendBatchParams {
  /** The ring epoch the writer holds. */
  readonly writerEpoch: number;
  /** Per entry: its stream, aggregate, expected version and number of events. */
  readonly streamIds: readonly string[];
  readonly aggregateTypes: readonly string[];
  readonly aggregateIds: readonly string[];
  readonly baseVersions: readonly number[];
  readonly eventCounts: readonly number[];
  /** Per command with an id: its entry ordinal, id, first and last offset (1-based within the entry). */
  readonly commandEntries: readonly number[];
  readonly commandIds: readonly string[];
  readonly commandFirstOffsets: readonly number[];
  readonly commandLastOffsets: readonly number[];
  /** Per event: its entry ordinal, index within the entry (1-based), type, schema version, data and metadata JSON. */
  readonly eventEntries: readonly number[];
  readonly eventIndexes: readonly number[];
  readonly eventTypes: readonly string[];
  readonly eventSchemaVersions: readonly number[];
  readonly eventData: readonly string[];
  readonly eventMetadata: readonly string[];
  /** The target epoch of the move the writer knows of (0 = none). */
  readonly moveEpoch: number;
  /** Per entry: whether its aggregate moves away under that move's target ring. */
  readonly moving: readonly boolean[];
  /** Per entry: the tenant a stream this entry creates belongs to. */
  readonly tenants: readonly string[];
  /** Per command with an id: the digest of its request (recorded with the command id). */
  readonly commandDigests: readonly (string | null)[];
}

/**
 * Each parameter's SQL type; the order of this object is the order of the
 * statement's `$n` (a prepared statement's plan is cached by name, so the
 * order is fixed here once).
 */
const PARAMETER_TYPES: { readonly [K in keyof AppendBatchParams]: string } = {
  writerEpoch: 'bigint',
  streamIds: 'text[]',
  aggregateTypes: 'text[]',
  aggregateIds: 'text[]',
  baseVersions: 'bigint[]',
  eventCounts: 'int[]',
  commandEntries: 'int[]',
  commandIds: 'text[]',
  commandFirstOffsets: 'int[]',
  commandLastOffsets: 'int[]',
  eventEntries: 'int[]',
  eventIndexes: 'int[]',
  eventTypes: 'text[]',
  eventSchemaVersions: 'int[]',
  eventData: 'text[]',
  eventMetadata: 'text[]',
  moveEpoch: 'bigint',
  moving: 'bool[]',
  tenants: 'text[]',
  commandDigests: 'text[]',
};

const PARAMETER_ORDER = Object.keys(PARAMETER_TYPES) as (keyof AppendBatchParams)[];

/** `$n::type` of each parameter, for the statement's text. */
const $ = Object.fromEntries(PARAMETER_ORDER.map((name, i) => [name, `$${i + 1}::${PARAMETER_TYPES[name]}`])) as Record<keyof AppendBatchParams, string>;

/**
 * The statement that appends one batch. Everything is decided inside it, in
 * one implicit transaction.
 *
 * The writer runs it as a prepared statement under a cached generic plan, so
 * its cost must not depend on what the planner guesses: a generic plan guesses
 * 10 rows for every unnest, and the tables' statistics are those of the moment
 * the plan was made (a new store has a handful of rows). So every table is
 * reached by key from the batch's own rows — a LATERAL lookup, an ON CONFLICT
 * arbiter, or `= ANY` of the batch's stream ids — never scanned, nor put on the
 * outside of a join; the joins between the batch's own row sets are hashed,
 * not nested loops quadratic in the batch (the session rules those out: see
 * {@link APPEND_SESSION_SETTINGS}); and the result is a list of facts, so it
 * needs no such join at all. `append-batch-plan.int.test.ts` holds it to this.
 *
 * 1. `fence` locks the shard_fence row FOR SHARE (a concurrent fence bump waits
 *    for this batch, and this batch sees a bump that committed first); no entry
 *    is admitted when the fence is above the writer's epoch ($1). (LIMIT 1 only
 *    tells the planner it is one row, which keeps its estimates sane.)
 *    The same row carries the move fence (`moving_epoch`, set by a rebalance
 *    when it seals this shard's moving streams): while the writer is below
 *    that epoch, an entry is admitted only if the writer knows that very move
 *    ($17) and says the entry's aggregate stays here under its target ring
 *    ($18). A writer that does not know the move gets nothing in, so no
 *    stream that is moving — existing or about to be created — can be
 *    appended here after the seal, whatever the writing process believes.
 * 2. `duplicates` finds entries with a command id already in command_results
 *    for their stream (one key lookup per command); they are not admitted.
 * 3. `advanced` / `created` move each admitted stream from its expected version
 *    to the new one (UPDATE … WHERE version = expected AND not moved, or
 *    INSERT … ON CONFLICT DO NOTHING for a new stream): the streams row is the
 *    optimistic-concurrency check, and it serialises concurrent writers.
 * 4. Only the entries that moved their row (`won`) insert events, in entry and
 *    version order (ORDER BY the unnest ordinal, so positions follow it), and
 *    their command_results rows. The events' unique (stream_id, version) key
 *    stays the final arbiter: if it fires the whole statement fails and the
 *    writer retries the entries one by one.
 * 5. The final SELECT reports facts rather than one row per entry (which would
 *    join CTEs): each row is `(kind, fact)`, a named JSON object whose fields
 *    {@link AppendBatchFacts} types, one member per kind. Adding a fact is one
 *    `UNION ALL SELECT '<kind>', json_build_object(…)` here and one member
 *    there. {@link entryOutcomes} puts them together per entry in one pass. A
 *    batch holds at most one entry per stream, so a stream id names its entry.
 *
 * Its parameters are named ({@link AppendBatchParams}); their positions and
 * SQL types come from {@link PARAMETER_TYPES}.
 */
export const APPEND_BATCH_SQL = `
WITH fence AS (
  SELECT epoch, moving_epoch FROM shard_fence WHERE id LIMIT 1 FOR SHARE
), entries AS (
  SELECT *
  FROM unnest(${$.streamIds}, ${$.aggregateTypes}, ${$.aggregateIds}, ${$.baseVersions}, ${$.eventCounts}, ${$.moving}, ${$.tenants})
       WITH ORDINALITY AS e(stream_id, aggregate_type, aggregate_id, base_version, event_count, moving, tenant, ord)
), commands AS (
  SELECT *
  FROM unnest(${$.commandEntries}, ${$.commandIds}, ${$.commandFirstOffsets}, ${$.commandLastOffsets}, ${$.commandDigests})
       WITH ORDINALITY AS c(entry_ord, command_id, first_offset, last_offset, request_digest, ord)
), duplicates AS (
  SELECT c.entry_ord, (array_agg(c.command_id ORDER BY c.ord))[1] AS command_id
  FROM commands c
  CROSS JOIN LATERAL (
    SELECT 1 FROM command_results r
    WHERE r.stream_id = (${$.streamIds})[c.entry_ord] AND r.command_id = c.command_id
    LIMIT 1
  ) r
  GROUP BY c.entry_ord
), admitted AS (
  SELECT e.*
  FROM entries e CROSS JOIN fence f
  WHERE f.epoch <= ${$.writerEpoch}
    AND (f.moving_epoch IS NULL OR f.moving_epoch <= ${$.writerEpoch} OR (f.moving_epoch = ${$.moveEpoch} AND NOT e.moving))
    AND NOT EXISTS (SELECT 1 FROM duplicates d WHERE d.entry_ord = e.ord)
), advanced AS (
  UPDATE streams s
  SET version = a.base_version + a.event_count
  FROM admitted a
  WHERE a.base_version > 0
    AND s.stream_id = ANY(${$.streamIds})
    AND s.stream_id = a.stream_id
    AND s.version = a.base_version
    AND s.moved_at_epoch IS NULL
  RETURNING s.stream_id
), created AS (
  INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version, tenant)
  SELECT a.stream_id, a.aggregate_type, a.aggregate_id, a.event_count, a.tenant
  FROM admitted a
  WHERE a.base_version = 0
  ORDER BY a.ord
  ON CONFLICT (stream_id) DO NOTHING
  RETURNING stream_id
), won AS (
  SELECT a.ord, a.stream_id, a.base_version
  FROM admitted a
  WHERE a.stream_id IN (SELECT stream_id FROM advanced UNION ALL SELECT stream_id FROM created)
), appended AS (
  INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
  SELECT w.stream_id, w.base_version + x.event_index, x.type, x.schema_version, x.data::jsonb, x.metadata::jsonb
  FROM unnest(${$.eventEntries}, ${$.eventIndexes}, ${$.eventTypes}, ${$.eventSchemaVersions}, ${$.eventData}, ${$.eventMetadata})
       WITH ORDINALITY AS x(entry_ord, event_index, type, schema_version, data, metadata, ord)
  JOIN won w ON w.ord = x.entry_ord
  ORDER BY x.ord
  RETURNING stream_id, version, position
), recorded AS (
  INSERT INTO command_results (stream_id, command_id, first_version, last_version, request_digest)
  SELECT w.stream_id, c.command_id, w.base_version + c.first_offset, w.base_version + c.last_offset, c.request_digest
  FROM commands c
  JOIN won w ON w.ord = c.entry_ord
), positions AS (
  SELECT stream_id, array_agg(position::text ORDER BY version) AS positions
  FROM appended
  GROUP BY stream_id
)
SELECT 'fence' AS kind, json_build_object('epoch', f.epoch::text, 'moving_epoch', f.moving_epoch::text, 'recorded_at', now()::text) AS fact
FROM fence f
UNION ALL
SELECT 'duplicate', json_build_object('ord', d.entry_ord, 'command_id', d.command_id)
FROM duplicates d
UNION ALL
SELECT 'appended', json_build_object('stream_id', p.stream_id, 'positions', p.positions)
FROM positions p
UNION ALL
SELECT 'stream', json_build_object('stream_id', s.stream_id, 'version', s.version::text, 'moved_at_epoch', s.moved_at_epoch::text)
FROM streams s
WHERE s.stream_id = ANY(${$.streamIds})
`;

/**
 * How a session that runs {@link APPEND_BATCH_SQL} plans it: once, as a cached
 * generic plan, since planning it anew costs more than running a small batch.
 * That plan is made from guesses (see above), so the session rules out the two
 * plan shapes that would make its cost depend on them: a scan of a table
 * (enable_seqscan; every table access is a key lookup) and a nested loop
 * between two of the batch's row sets (enable_nestloop; a LATERAL lookup,
 * which can only be a nested loop, still is one). jit: compiling the statement
 * costs more than running it.
 */
export const APPEND_SESSION_SETTINGS = 'SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_nestloop = off; SET jit = off';

/** An entry as the statement takes it: its event data and metadata already JSON. */
export interface SerializedEntry {
  readonly entry: AppendEntry;
  readonly data: readonly string[];
  readonly metadata: readonly string[];
}

/** The parameters of {@link APPEND_BATCH_SQL} for a batch (at most one entry per stream). */
export function appendBatchValues(batch: readonly SerializedEntry[], epoch: number, move: PendingMove | undefined): unknown[] {
  const params = {
    writerEpoch: epoch,
    streamIds: [] as string[],
    aggregateTypes: [] as string[],
    aggregateIds: [] as string[],
    baseVersions: [] as number[],
    eventCounts: [] as number[],
    commandEntries: [] as number[],
    commandIds: [] as string[],
    commandFirstOffsets: [] as number[],
    commandLastOffsets: [] as number[],
    eventEntries: [] as number[],
    eventIndexes: [] as number[],
    eventTypes: [] as string[],
    eventSchemaVersions: [] as number[],
    eventData: [] as string[],
    eventMetadata: [] as string[],
    moveEpoch: move?.epoch ?? 0,
    moving: [] as boolean[],
    tenants: [] as string[],
    commandDigests: [] as (string | null)[],
  } satisfies AppendBatchParams;
  batch.forEach((item, i) => {
    const { entry } = item;
    const ord = i + 1;
    params.streamIds.push(entry.streamId);
    params.aggregateTypes.push(entry.aggregateType);
    params.aggregateIds.push(entry.aggregateId);
    params.baseVersions.push(entry.baseVersion);
    params.eventCounts.push(entry.events.length);
    params.moving.push(move !== undefined && move.movesAway(entry.aggregateId));
    params.tenants.push(entry.tenant ?? '');
    let offset = 0;
    for (const command of entry.commands) {
      if (command.commandId !== undefined) {
        params.commandEntries.push(ord);
        params.commandIds.push(command.commandId);
        params.commandFirstOffsets.push(offset + 1);
        params.commandLastOffsets.push(offset + command.eventCount);
        params.commandDigests.push(command.requestDigest ?? null);
      }
      offset += command.eventCount;
    }
    entry.events.forEach((event, j) => {
      params.eventEntries.push(ord);
      params.eventIndexes.push(j + 1);
      params.eventTypes.push(event.type);
      params.eventSchemaVersions.push(event.schemaVersion);
      params.eventData.push(item.data[j]!);
      params.eventMetadata.push(item.metadata[j]!);
    });
  });
  return PARAMETER_ORDER.map((name) => params[name]);
}

/**
 * The facts {@link APPEND_BATCH_SQL} reports, by kind: each result row is
 * `(kind, fact)` with `fact` the JSON object typed here (BIGINTs and times as
 * text, so nothing loses precision on the way).
 */
export interface AppendBatchFacts {
  /** Exactly one: shard_fence's epoch and move fence (moving_epoch), and the transaction's time. */
  readonly fence: { readonly epoch: string; readonly moving_epoch: string | null; readonly recorded_at: string };
  /** An entry (`ord`, 1-based) not admitted: the first of its command ids already recorded on its stream. */
  readonly duplicate: { readonly ord: number; readonly command_id: string };
  /** An appended stream: its new events' positions, in version order. */
  readonly appended: { readonly stream_id: string; readonly positions: string[] };
  /** A stream of the batch that exists, as of the statement's snapshot (before this batch). */
  readonly stream: { readonly stream_id: string; readonly version: string; readonly moved_at_epoch: string | null };
}

/** One row of {@link APPEND_BATCH_SQL}'s result. */
export type AppendBatchFact = { [K in keyof AppendBatchFacts]: { readonly kind: K; readonly fact: AppendBatchFacts[K] } }[keyof AppendBatchFacts];

/** The facts of a result, grouped by kind, in result order: the one place rows are decoded. */
export type FactsByKind = { readonly [K in keyof AppendBatchFacts]?: AppendBatchFacts[K][] };

export function factsByKind(rows: readonly AppendBatchFact[]): FactsByKind {
  const facts: { -readonly [K in keyof AppendBatchFacts]?: AppendBatchFacts[K][] } = {};
  for (const row of rows) ((facts[row.kind] ??= []) as AppendBatchFacts[typeof row.kind][]).push(row.fact);
  return facts;
}

/** The time of the statement's transaction, parsed as node-postgres parses a timestamptz column. */
const parseTimestamptz = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (text: string) => Date;

/** What the statement decided for one entry (BIGINTs as text). */
export interface EntryOutcome {
  readonly fenceEpoch: string;
  /** The move fence (shard_fence.moving_epoch), when a rebalance set one. */
  readonly movingEpoch: string | null;
  readonly duplicateCommandId: string | null;
  /** Set exactly when the entry was appended. */
  readonly positions: string[] | null;
  /** The stream's version in the statement's snapshot, i.e. before this batch; null for no stream. */
  readonly currentVersion: string | null;
  readonly movedAtEpoch: string | null;
  readonly recordedAt: Date;
}

/**
 * The outcome of each entry, in entry order, from the statement's facts.
 * @param streamIds the batch's stream ids, in entry order.
 * @throws Error when the store has no shard_fence row (it is not migrated).
 */
export function entryOutcomes(streamIds: readonly string[], facts: FactsByKind): EntryOutcome[] {
  const fence = facts.fence?.[0];
  if (fence === undefined) throw new Error('shard_fence has no row: run migrate() first');
  const duplicates = new Map((facts.duplicate ?? []).map((d) => [d.ord, d.command_id]));
  const appended = new Map((facts.appended ?? []).map((a) => [a.stream_id, a.positions]));
  const streams = new Map((facts.stream ?? []).map((st) => [st.stream_id, st]));
  const recordedAt = parseTimestamptz(fence.recorded_at);
  return streamIds.map((streamId, i) => {
    const stream = streams.get(streamId);
    return {
      fenceEpoch: fence.epoch,
      movingEpoch: fence.moving_epoch,
      duplicateCommandId: duplicates.get(i + 1) ?? null,
      positions: appended.get(streamId) ?? null,
      currentVersion: stream?.version ?? null,
      movedAtEpoch: stream?.moved_at_epoch ?? null,
      recordedAt,
    };
  });
}

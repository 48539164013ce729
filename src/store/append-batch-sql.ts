import type { AppendEntry, PendingMove } from './types.js';

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
 *    join CTEs): the fence and move-fence epochs (`fence`), each entry's
 *    duplicate command id (`duplicate`), each appended stream's positions
 *    (`appended`), and each of the batch's streams that exists, as of the
 *    statement's snapshot (`stream`: version, moved_at_epoch).
 *    {@link entryOutcomes} puts them together per entry in one pass. A batch
 *    holds at most one entry per stream, so a stream id names its entry.
 *
 * Parameters (arrays are parallel; "entry ordinal" is 1-based):
 *  $1 writer epoch bigint
 *  $2..$6  per entry: stream_id, aggregate_type, aggregate_id, expected_version, event_count
 *  $7..$10 per command with an id: entry ordinal, command_id, first/last offset (1-based within the entry)
 *  $11..$16 per event: entry ordinal, index within the entry (1-based), type, schema_version, data json, metadata json
 *  $17 the target epoch of the move the writer knows of (0 = none)
 *  $18 per entry: whether its aggregate moves away under that move's target ring
 *  $19 per entry: the tenant a stream this entry creates belongs to
 *  $20 per command with an id: the digest of its request (recorded with the command id)
 */
export const APPEND_BATCH_SQL = `
WITH fence AS (
  SELECT epoch, moving_epoch FROM shard_fence WHERE id LIMIT 1 FOR SHARE
), entries AS (
  SELECT *
  FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $18::bool[], $19::text[])
       WITH ORDINALITY AS e(stream_id, aggregate_type, aggregate_id, expected_version, event_count, moving, tenant, ord)
), commands AS (
  SELECT *
  FROM unnest($7::int[], $8::text[], $9::int[], $10::int[], $20::text[])
       WITH ORDINALITY AS c(entry_ord, command_id, first_offset, last_offset, request_digest, ord)
), duplicates AS (
  SELECT c.entry_ord, (array_agg(c.command_id ORDER BY c.ord))[1] AS command_id
  FROM commands c
  CROSS JOIN LATERAL (
    SELECT 1 FROM command_results r
    WHERE r.stream_id = ($2::text[])[c.entry_ord] AND r.command_id = c.command_id
    LIMIT 1
  ) r
  GROUP BY c.entry_ord
), admitted AS (
  SELECT e.*
  FROM entries e CROSS JOIN fence f
  WHERE f.epoch <= $1::bigint
    AND (f.moving_epoch IS NULL OR f.moving_epoch <= $1::bigint OR (f.moving_epoch = $17::bigint AND NOT e.moving))
    AND NOT EXISTS (SELECT 1 FROM duplicates d WHERE d.entry_ord = e.ord)
), advanced AS (
  UPDATE streams s
  SET version = a.expected_version + a.event_count
  FROM admitted a
  WHERE a.expected_version > 0
    AND s.stream_id = ANY($2::text[])
    AND s.stream_id = a.stream_id
    AND s.version = a.expected_version
    AND s.moved_at_epoch IS NULL
  RETURNING s.stream_id
), created AS (
  INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version, tenant)
  SELECT a.stream_id, a.aggregate_type, a.aggregate_id, a.event_count, a.tenant
  FROM admitted a
  WHERE a.expected_version = 0
  ORDER BY a.ord
  ON CONFLICT (stream_id) DO NOTHING
  RETURNING stream_id
), won AS (
  SELECT a.ord, a.stream_id, a.expected_version
  FROM admitted a
  WHERE a.stream_id IN (SELECT stream_id FROM advanced UNION ALL SELECT stream_id FROM created)
), appended AS (
  INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
  SELECT w.stream_id, w.expected_version + x.event_index, x.type, x.schema_version, x.data::jsonb, x.metadata::jsonb
  FROM unnest($11::int[], $12::int[], $13::text[], $14::int[], $15::text[], $16::text[])
       WITH ORDINALITY AS x(entry_ord, event_index, type, schema_version, data, metadata, ord)
  JOIN won w ON w.ord = x.entry_ord
  ORDER BY x.ord
  RETURNING stream_id, version, position
), recorded AS (
  INSERT INTO command_results (stream_id, command_id, first_version, last_version, request_digest)
  SELECT w.stream_id, c.command_id, w.expected_version + c.first_offset, w.expected_version + c.last_offset, c.request_digest
  FROM commands c
  JOIN won w ON w.ord = c.entry_ord
), positions AS (
  SELECT stream_id, array_agg(position::text ORDER BY version) AS positions
  FROM appended
  GROUP BY stream_id
)
SELECT 'fence' AS kind, NULL::int AS ord, NULL::text AS stream_id, NULL::text AS command_id, NULL::text[] AS positions,
       NULL::text AS version, NULL::text AS moved_at_epoch,
       f.epoch::text AS fence_epoch, f.moving_epoch::text AS moving_epoch, now() AS recorded_at
FROM fence f
UNION ALL
SELECT 'duplicate', d.entry_ord, NULL, d.command_id, NULL, NULL, NULL, NULL, NULL, NULL
FROM duplicates d
UNION ALL
SELECT 'appended', NULL, p.stream_id, NULL, p.positions, NULL, NULL, NULL, NULL, NULL
FROM positions p
UNION ALL
SELECT 'stream', NULL, s.stream_id, NULL, NULL, s.version::text, s.moved_at_epoch::text, NULL, NULL, NULL
FROM streams s
WHERE s.stream_id = ANY($2::text[])
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
export const APPEND_SESSION_SETTINGS =
  'SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_nestloop = off; SET jit = off';

/** An entry as the statement takes it: its event data and metadata already JSON. */
export interface SerializedEntry {
  readonly entry: AppendEntry;
  readonly data: readonly string[];
  readonly metadata: readonly string[];
}

/** The parameters of {@link APPEND_BATCH_SQL} for a batch (at most one entry per stream). */
export function appendBatchValues(batch: readonly SerializedEntry[], epoch: number, move: PendingMove | undefined): unknown[] {
  const streamIds: string[] = [];
  const aggregateTypes: string[] = [];
  const aggregateIds: string[] = [];
  const expected: number[] = [];
  const eventCounts: number[] = [];
  const moving: boolean[] = [];
  const tenants: string[] = [];
  const cmdDigest: (string | null)[] = [];
  const cmdEntry: number[] = [];
  const cmdId: string[] = [];
  const cmdFirst: number[] = [];
  const cmdLast: number[] = [];
  const evEntry: number[] = [];
  const evIndex: number[] = [];
  const evType: string[] = [];
  const evSchema: number[] = [];
  const evData: string[] = [];
  const evMeta: string[] = [];

  batch.forEach((item, i) => {
    const { entry } = item;
    const ord = i + 1;
    streamIds.push(entry.streamId);
    aggregateTypes.push(entry.aggregateType);
    aggregateIds.push(entry.aggregateId);
    expected.push(entry.expectedVersion);
    eventCounts.push(entry.events.length);
    moving.push(move !== undefined && move.movesAway(entry.aggregateId));
    tenants.push(entry.tenant ?? '');
    let offset = 0;
    for (const command of entry.commands) {
      if (command.commandId !== undefined) {
        cmdEntry.push(ord);
        cmdId.push(command.commandId);
        cmdFirst.push(offset + 1);
        cmdLast.push(offset + command.eventCount);
        cmdDigest.push(command.requestDigest ?? null);
      }
      offset += command.eventCount;
    }
    entry.events.forEach((event, j) => {
      evEntry.push(ord);
      evIndex.push(j + 1);
      evType.push(event.type);
      evSchema.push(event.schemaVersion);
      evData.push(item.data[j]!);
      evMeta.push(item.metadata[j]!);
    });
  });

  return [
    epoch,
    streamIds,
    aggregateTypes,
    aggregateIds,
    expected,
    eventCounts,
    cmdEntry,
    cmdId,
    cmdFirst,
    cmdLast,
    evEntry,
    evIndex,
    evType,
    evSchema,
    evData,
    evMeta,
    move?.epoch ?? 0,
    moving,
    tenants,
    cmdDigest,
  ];
}

/** One row of {@link APPEND_BATCH_SQL}'s result (BIGINTs as text); which columns are set depends on `kind`. */
export interface AppendBatchFact {
  readonly kind: 'fence' | 'duplicate' | 'appended' | 'stream';
  /** `duplicate`: the entry ordinal (1-based). */
  readonly ord: number | null;
  /** `appended`, `stream`: the stream. */
  readonly stream_id: string | null;
  /** `duplicate`: the first command id of the entry already recorded. */
  readonly command_id: string | null;
  /** `appended`: the new events' positions, in version order. */
  readonly positions: string[] | null;
  /** `stream`: the stream's version in the statement's snapshot, i.e. before this batch. */
  readonly version: string | null;
  readonly moved_at_epoch: string | null;
  /** `fence`: shard_fence.epoch and moving_epoch, and the transaction's time. */
  readonly fence_epoch: string | null;
  readonly moving_epoch: string | null;
  readonly recorded_at: Date | null;
}

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
export function entryOutcomes(streamIds: readonly string[], facts: readonly AppendBatchFact[]): EntryOutcome[] {
  let fence: AppendBatchFact | undefined;
  const duplicates = new Map<number, string>();
  const appended = new Map<string, string[]>();
  const streams = new Map<string, AppendBatchFact>();
  for (const fact of facts) {
    if (fact.kind === 'fence') fence = fact;
    else if (fact.kind === 'duplicate') duplicates.set(fact.ord!, fact.command_id!);
    else if (fact.kind === 'appended') appended.set(fact.stream_id!, fact.positions!);
    else streams.set(fact.stream_id!, fact);
  }
  if (fence === undefined) throw new Error('shard_fence has no row: run migrate() first');
  return streamIds.map((streamId, i) => {
    const stream = streams.get(streamId);
    return {
      fenceEpoch: fence.fence_epoch!,
      movingEpoch: fence.moving_epoch,
      duplicateCommandId: duplicates.get(i + 1) ?? null,
      positions: appended.get(streamId) ?? null,
      currentVersion: stream?.version ?? null,
      movedAtEpoch: stream?.moved_at_epoch ?? null,
      recordedAt: fence.recorded_at!,
    };
  });
}

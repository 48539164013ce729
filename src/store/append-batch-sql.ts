/**
 * The statement that appends one batch. Everything is decided inside it, in
 * one implicit transaction, with one outcome row per entry:
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
 *    for their stream; they are not admitted.
 * 3. `advanced` / `created` move each admitted stream from its expected version
 *    to the new one (UPDATE … WHERE version = expected AND not moved, or
 *    INSERT … ON CONFLICT DO NOTHING for a new stream): the streams row is the
 *    optimistic-concurrency check, and it serialises concurrent writers.
 * 4. Only the entries that moved their row (`won`) insert events, in entry and
 *    version order (ORDER BY the unnest ordinal, so positions follow it), and
 *    their command_results rows. The events' unique (stream_id, version) key
 *    stays the final arbiter: if it fires the whole statement fails and the
 *    writer retries the entries one by one.
 * 5. The final SELECT reports, per entry: the fence and move-fence epochs, the duplicate
 *    command id, whether it was appended (with positions), and the stream row
 *    as of the statement's snapshot (version, moved_at_epoch) for the losers.
 *
 * Parameters (arrays are parallel; "entry ordinal" is 1-based):
 *  $1 writer epoch bigint
 *  $2..$6  per entry: stream_id, aggregate_type, aggregate_id, expected_version, event_count
 *  $7..$10 per command with an id: entry ordinal, command_id, first/last offset (1-based within the entry)
 *  $11..$16 per event: entry ordinal, index within the entry (1-based), type, schema_version, data json, metadata json
 *  $17 the target epoch of the move the writer knows of (0 = none)
 *  $18 per entry: whether its aggregate moves away under that move's target ring
 */
export const APPEND_BATCH_SQL = `
WITH fence AS (
  SELECT epoch, moving_epoch FROM shard_fence WHERE id LIMIT 1 FOR SHARE
), entries AS (
  SELECT *
  FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $18::bool[])
       WITH ORDINALITY AS e(stream_id, aggregate_type, aggregate_id, expected_version, event_count, moving, ord)
), commands AS (
  SELECT *
  FROM unnest($7::int[], $8::text[], $9::int[], $10::int[])
       WITH ORDINALITY AS c(entry_ord, command_id, first_offset, last_offset, ord)
), duplicates AS (
  SELECT c.entry_ord, (array_agg(c.command_id ORDER BY c.ord))[1] AS command_id
  FROM commands c
  JOIN entries e ON e.ord = c.entry_ord
  JOIN command_results r ON r.stream_id = e.stream_id AND r.command_id = c.command_id
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
    AND s.stream_id = a.stream_id
    AND s.version = a.expected_version
    AND s.moved_at_epoch IS NULL
  RETURNING s.stream_id
), created AS (
  INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version)
  SELECT a.stream_id, a.aggregate_type, a.aggregate_id, a.event_count
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
  INSERT INTO command_results (stream_id, command_id, first_version, last_version)
  SELECT w.stream_id, c.command_id, w.expected_version + c.first_offset, w.expected_version + c.last_offset
  FROM commands c
  JOIN won w ON w.ord = c.entry_ord
), positions AS (
  SELECT stream_id, array_agg(position::text ORDER BY version) AS positions
  FROM appended
  GROUP BY stream_id
)
SELECT e.ord::int AS ord,
       f.epoch::text AS fence_epoch,
       f.moving_epoch::text AS moving_epoch,
       d.command_id AS duplicate_command_id,
       w.ord IS NOT NULL AS appended,
       p.positions,
       s.version::text AS current_version,
       s.moved_at_epoch::text AS moved_at_epoch,
       now() AS recorded_at
FROM entries e
LEFT JOIN fence f ON true
LEFT JOIN duplicates d ON d.entry_ord = e.ord
LEFT JOIN won w ON w.ord = e.ord
LEFT JOIN positions p ON p.stream_id = e.stream_id
LEFT JOIN streams s ON s.stream_id = e.stream_id
ORDER BY e.ord
`;

/** One row of {@link APPEND_BATCH_SQL}'s result (BIGINTs as text). */
export interface AppendBatchRow {
  readonly ord: number;
  readonly fence_epoch: string | null;
  /** The move fence (shard_fence.moving_epoch), when a rebalance set one. */
  readonly moving_epoch: string | null;
  readonly duplicate_command_id: string | null;
  readonly appended: boolean;
  readonly positions: string[] | null;
  /** The stream's version in the statement's snapshot, i.e. before this batch. */
  readonly current_version: string | null;
  readonly moved_at_epoch: string | null;
  readonly recorded_at: Date;
}

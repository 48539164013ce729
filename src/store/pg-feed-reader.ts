/**
 * Reads a shard's events in feed order for subscriptions: by (transaction id,
 * position), passing only transactions below the oldest one still running
 * on the server. A batch whose transaction took lower positions but commits
 * after another is therefore never passed over (I11): until it commits, the
 * feed stops in front of it; events copied in by a rebalance follow the same
 * rule.
 */
import type pg from 'pg';
import { translatePgError } from './pg-errors.js';
import { resolvePool, type PoolOptions } from './pg-pool.js';
import { START, type ShardPosition } from '../subscriptions/position.js';
import type { FeedItem } from '../generated/shardwrite/internal/v1/FeedItem.js';

/** One event as the feed reads it; `data` and `metadata` are JSON text. */
export interface FeedRow {
  readonly at: ShardPosition;
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: string;
  readonly metadata: string;
  readonly recordedAt: Date;
  readonly eventId: string;
  /** The tenant recorded in the metadata, parsed by the first tenant-bound reader that needs it. */
  tenant?: string;
  /** Set on a copy made by a rebalance: where the event was first committed. */
  readonly origin: { readonly shard: string; readonly at: ShardPosition } | undefined;
  /** Approximate size in memory (for the live tail's byte bound). */
  readonly bytes: number;
  /**
   * The event as subscriptions send it, encoded by the first subscriber that
   * needs it and shared by the others (a row in the live tail is read by all).
   */
  encoded?: FeedItem;
}

interface Row {
  tx_text: string;
  position_text: string;
  stream_id: string;
  version: string;
  type: string;
  schema_version: number;
  data: string;
  metadata: string;
  recorded_at: Date;
  event_id: string;
  origin_shard: string | null;
  origin_tx: string | null;
  origin_position: string | null;
}

// Output names differ from the columns: an ORDER BY naming `tx` or `position` would sort the text.
const OUTPUT = `tx_text, position_text, stream_id, version, type, schema_version, data, metadata, recorded_at, event_id, origin_shard, origin_tx, origin_position`;
const COLUMNS = `e.tx::text AS tx_text, e.position::text AS position_text, e.tx AS tx, e.position AS position, stream_id, version::text AS version, type, schema_version,
  data::text AS data, metadata::text AS metadata, recorded_at, event_id::text AS event_id,
  origin_shard, origin_tx::text AS origin_tx, origin_position::text AS origin_position`;

/**
 * Both tables hold feed rows: `moved_events` keeps old copies a rebalance
 * cleaned up, in their place. The outer query returns only what a row needs
 * (`tx` and `position` themselves only order it). Whatever the position, the
 * plan is an index range scan of each table, merged: see
 * {@link FEED_SESSION_OPTIONS}.
 */
export const PAGE_SQL = `
SELECT ${OUTPUT} FROM (
  (SELECT ${COLUMNS} FROM events e
   WHERE (e.tx, e.position) > ($1::xid8, $2::bigint) AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY e.tx, e.position LIMIT $3)
  UNION ALL
  (SELECT ${COLUMNS} FROM moved_events e
   WHERE (e.tx, e.position) > ($1::xid8, $2::bigint) AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY e.tx, e.position LIMIT $3)
) f
ORDER BY f.tx, f.position
LIMIT $3`;

const TAIL_SQL = `
SELECT f.tx::text AS tx_text, f.position::text AS position_text FROM (
  (SELECT tx, position FROM events WHERE tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY tx DESC, position DESC LIMIT 1)
  UNION ALL
  (SELECT tx, position FROM moved_events WHERE tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY tx DESC, position DESC LIMIT 1)
) f
ORDER BY f.tx DESC, f.position DESC LIMIT 1`;

const COPIED_UP_TO_SQL = `
SELECT DISTINCT ON (c.origin_shard) c.origin_shard, c.origin_tx::text AS origin_tx_text, c.origin_position::text AS origin_position_text FROM (
  SELECT origin_shard, origin_tx, origin_position FROM events
  WHERE origin_shard IS NOT NULL AND (tx, position) <= ($1::xid8, $2::bigint)
  UNION ALL
  SELECT origin_shard, origin_tx, origin_position FROM moved_events
  WHERE origin_shard IS NOT NULL AND (tx, position) <= ($1::xid8, $2::bigint)
) c
ORDER BY c.origin_shard, c.origin_tx DESC, c.origin_position DESC`;

/**
 * How the feed's own sessions plan. The live tail runs the page statement
 * after every commit (coalesced), so planning it anew each time cost more than
 * running it: 166 µs of PostgreSQL CPU per poll at the tail with a custom
 * plan, 52 µs with the cached generic one (measured on one backend's /proc
 * CPU over 5,000 polls). Its generic plan cannot go wrong: the ORDER BY
 * and the row comparison match the (tx, position) index of each table, so it
 * is two index range scans under a LIMIT (feed-reader.int.test.ts holds it to
 * that); jit: compiling costs more than running it.
 */
export const FEED_SESSION_OPTIONS = '-c plan_cache_mode=force_generic_plan -c jit=off';

export class PgFeedReader {
  readonly #pool: pg.Pool;
  readonly #owned: boolean;

  /**
   * @param options a pool to use (its sessions plan as they are), or how to
   *   open the feed's own (small, with {@link FEED_SESSION_OPTIONS}), which
   *   `close()` ends.
   */
  constructor(options: PoolOptions) {
    const { pool, owned } = resolvePool(options, { poolSize: 3, applicationName: 'shardwrite-feed', sessionOptions: FEED_SESSION_OPTIONS });
    this.#pool = pool;
    this.#owned = owned;
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#pool.end();
  }

  /** Up to `limit` feed rows after `after`, in feed order; fewer (or none) when the visible tail is reached. */
  async page(after: ShardPosition, limit: number): Promise<FeedRow[]> {
    const r = await this.#query<Row>({ name: 'sw-feed-page', text: PAGE_SQL }, [after.tx.toString(), after.position.toString(), limit]);
    return r.rows.map(toFeedRow);
  }

  /** The last position a reader may pass now ({@link START} for an empty store). */
  async tail(): Promise<ShardPosition> {
    const r = await this.#query<{ tx_text: string; position_text: string }>({ name: 'sw-feed-tail', text: TAIL_SQL }, []);
    const row = r.rows[0];
    return row ? { tx: BigInt(row.tx_text), position: BigInt(row.position_text) } : START;
  }

  /**
   * Whether committed events exist after `at` that a reader may not pass yet
   * (an older transaction still runs): the feed is not at its end then.
   */
  async committedAfter(at: ShardPosition): Promise<boolean> {
    const r = await this.#query<{ more: boolean }>(
      {
        name: 'sw-feed-committed-after',
        text: `SELECT EXISTS (SELECT 1 FROM events WHERE (tx, position) > ($1::xid8, $2::bigint))
                   OR EXISTS (SELECT 1 FROM moved_events WHERE (tx, position) > ($1::xid8, $2::bigint)) AS more`,
      },
      [at.tx.toString(), at.position.toString()],
    );
    return r.rows[0]?.more === true;
  }

  /** Per origin shard, the newest origin position among the copies at or below `upTo`. */
  async copiedUpTo(upTo: ShardPosition): Promise<Map<string, ShardPosition>> {
    const r = await this.#query<{ origin_shard: string; origin_tx_text: string; origin_position_text: string }>(COPIED_UP_TO_SQL, [upTo.tx.toString(), upTo.position.toString()]);
    return new Map(r.rows.map((row) => [row.origin_shard, { tx: BigInt(row.origin_tx_text), position: BigInt(row.origin_position_text) }]));
  }

  async #query<R extends pg.QueryResultRow>(text: string | { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(typeof text === 'string' ? { text, values } : { ...text, values });
    } catch (err) {
      throw translatePgError(err);
    }
  }
}

function toFeedRow(r: Row): FeedRow {
  return {
    at: { tx: BigInt(r.tx_text), position: BigInt(r.position_text) },
    streamId: r.stream_id,
    version: Number(r.version),
    type: r.type,
    schemaVersion: r.schema_version,
    data: r.data,
    metadata: r.metadata,
    recordedAt: r.recorded_at,
    eventId: r.event_id,
    origin: r.origin_shard === null ? undefined : { shard: r.origin_shard, at: { tx: BigInt(r.origin_tx!), position: BigInt(r.origin_position!) } },
    bytes: 200 + r.data.length + r.metadata.length + r.stream_id.length,
  };
}

/**
 * Snapshots in the shard's own PostgreSQL (the `snapshots` table of
 * migration 1), and the one-round-trip read that rehydration uses.
 */
import pg from 'pg';
import { resolvePool, type PoolOptions } from './pg-pool.js';
import { translatePgError } from './pg-errors.js';
import { toBigInt, toSafeInteger } from './pg-values.js';
import type { EventMetadata, Snapshot, SnapshotLoad, SnapshotLoadRequest, SnapshotSaveResult, SnapshotStore, StoredEvent, StoredSnapshot } from './types.js';

/**
 * Either a pool the caller owns (`close()` leaves it open; pass it bare or as
 * `{ pool }`), or a connection string from which the store builds and owns
 * its pool.
 */
export type PgSnapshotStoreOptions = Exclude<PoolOptions, pg.Pool>;

/**
 * Upsert that never replaces a newer snapshot (higher version, or the same
 * version in a higher state schema), and only for a version the stream has:
 * the source row is the event at that version, whose position comes back to
 * tie cached copies to this history.
 */
const SAVE_SQL = `
  WITH ev AS (
    SELECT position FROM events WHERE stream_id = $1 AND version = $3
  ), up AS (
    INSERT INTO snapshots (stream_id, aggregate_type, version, schema_version, state, taken_at)
    SELECT $1, $2, $3, $4, $5::json, now() FROM ev
    ON CONFLICT (stream_id) DO UPDATE
      SET aggregate_type = excluded.aggregate_type,
          version        = excluded.version,
          schema_version = excluded.schema_version,
          state          = excluded.state,
          taken_at       = excluded.taken_at
      WHERE snapshots.version < excluded.version
         OR (snapshots.version = excluded.version AND snapshots.schema_version < excluded.schema_version)
    RETURNING 1
  )
  SELECT ev.position::text AS position, (SELECT count(*) FROM up)::int AS written FROM ev`;

/**
 * One statement, so one MVCC snapshot: the cached snapshot's check, the
 * stored snapshot and the events after the best starting point can never
 * disagree about the stream.
 *
 * Rows: kind 0 — exactly one, `version` = the accepted cached version or 0;
 * kind 1 — the stored snapshot when newer than that (`type` = its aggregate
 * type, its state only when its schema is `$4`); kind 2 — the events after the starting point.
 */
const LOAD_SQL = `
  WITH cached AS (
    SELECT e.version FROM events e
    WHERE e.stream_id = $1 AND e.version = $2::bigint AND e.position = $3::bigint
  ), floor AS (
    SELECT COALESCE((SELECT version FROM cached), 0) AS version
  ), snap AS (
    SELECT s.version, s.schema_version, s.aggregate_type, s.state, ev.position
    FROM snapshots s
    JOIN events ev ON ev.stream_id = s.stream_id AND ev.version = s.version
    WHERE s.stream_id = $1 AND s.version > (SELECT version FROM floor)
  ), base AS (
    SELECT COALESCE((SELECT version FROM snap WHERE schema_version = $4), (SELECT version FROM floor)) AS version
  )
  SELECT 0 AS kind, (SELECT version FROM floor) AS version, NULL::int AS schema_version, NULL::text AS type,
         NULL::jsonb AS data, NULL::json AS state, NULL::jsonb AS metadata, NULL::bigint AS position,
         NULL::timestamptz AS recorded_at
  UNION ALL
  SELECT 1, version, schema_version, aggregate_type, NULL, CASE WHEN schema_version = $4 THEN state END, NULL, position, NULL
  FROM snap
  UNION ALL
  SELECT 2, e.version, e.schema_version, e.type, e.data, NULL, e.metadata, e.position, e.recorded_at
  FROM events e
  WHERE e.stream_id = $1 AND e.version > (SELECT version FROM base)
  ORDER BY kind, version`;

interface LoadRow {
  kind: number;
  version: string;
  schema_version: number | null;
  type: string | null;
  data: unknown;
  state: unknown;
  metadata: EventMetadata | null;
  position: string | null;
  recorded_at: Date | null;
}

/**
 * `SnapshotStore` over PostgreSQL. Every method rejects with
 * `StoreUnavailableError` when the database cannot be reached or times out;
 * other database errors are passed through unchanged.
 */
export class PgSnapshotStore implements SnapshotStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;

  constructor(options: pg.Pool | PgSnapshotStoreOptions) {
    const { pool, owned } = resolvePool(options, { poolSize: 4, applicationName: 'shardwrite-snapshots' });
    this.#pool = pool;
    this.#ownsPool = owned;
  }

  /**
   * Upserts `snapshot` unless the stored one is at a higher version (or the
   * same version in a higher schema). The state is stored as its exact JSON
   * text (`json`, not `jsonb`: object keys keep their order).
   *
   * @throws Error when the stream has no event at `snapshot.version` (a
   *   snapshot must describe a prefix of the stream); RangeError for a
   *   version that is not a positive safe integer.
   */
  async save(snapshot: Snapshot): Promise<SnapshotSaveResult> {
    if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) {
      throw new RangeError(`snapshot version ${snapshot.version} is not a positive integer`);
    }
    const result = await this.#query<{ position: string; written: number }>(SAVE_SQL, [
      snapshot.streamId,
      snapshot.aggregateType,
      snapshot.version,
      snapshot.schemaVersion,
      JSON.stringify(snapshot.state),
    ]);
    const row = result.rows[0];
    if (row === undefined) throw new Error(`stream ${snapshot.streamId} has no version ${snapshot.version} to snapshot`);
    return { written: row.written > 0, position: toBigInt(row.position, 'events.position') };
  }

  /** See `SnapshotStore.load`; one statement. */
  async load(streamId: string, request: SnapshotLoadRequest): Promise<SnapshotLoad> {
    const cached = request.cached;
    const result = await this.#query<LoadRow>({ name: 'sw-snapshot-load', text: LOAD_SQL }, [
      streamId,
      cached ? cached.version : null,
      cached ? cached.position.toString() : null,
      request.schemaVersion,
    ]);
    let floor = 0;
    let snapshot: StoredSnapshot | undefined;
    const events: StoredEvent[] = [];
    for (const row of result.rows) {
      if (row.kind === 2) {
        events.push({
          streamId,
          version: toSafeInteger(row.version, 'events.version'),
          type: row.type!,
          schemaVersion: row.schema_version!,
          data: row.data,
          metadata: row.metadata!,
          position: toBigInt(row.position, 'events.position'),
          recordedAt: row.recorded_at!,
        });
      } else if (row.kind === 1) {
        snapshot = {
          streamId,
          aggregateType: row.type ?? '',
          version: toSafeInteger(row.version, 'snapshots.version'),
          schemaVersion: row.schema_version!,
          state: row.schema_version === request.schemaVersion ? row.state : undefined,
          position: toBigInt(row.position, 'events.position'),
        };
      } else {
        floor = toSafeInteger(row.version, 'snapshot floor');
      }
    }
    return { cachedAccepted: cached !== undefined && floor > 0 && floor === cached.version, snapshot, events };
  }

  /** Ends the pool when the store built it; otherwise does nothing. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }

  async #query<R extends pg.QueryResultRow>(query: string | { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      const config = typeof query === 'string' ? { text: query } : query;
      return await this.#pool.query<R>({ ...config, values });
    } catch (err) {
      throw translatePgError(err, 'the snapshot store is unavailable');
    }
  }
}

/**
 * Reads of a shard's event store over a connection pool, independent of the writer.
 */
import pg from 'pg';
import { resolvePool, type PoolOptions } from './pg-pool.js';
import { translatePgError } from './pg-errors.js';
import { toBigInt, toSafeInteger } from './pg-values.js';
import type { CommandRecord, EventMetadata, EventReader, StoredEvent } from './types.js';

/**
 * Either a pool the caller owns (`close()` leaves it open; pass it bare or as
 * `{ pool }`), or a connection string from which the reader builds and owns
 * its pool.
 */
export type PgEventReaderOptions = Exclude<PoolOptions, pg.Pool>;

interface EventRow {
  stream_id: string;
  version: string;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: EventMetadata;
  position: string;
  recorded_at: Date;
}

interface CommandRow {
  stream_id: string;
  command_id: string;
  first_version: string;
  last_version: string;
  request_digest: string | null;
}

/**
 * `EventReader` over PostgreSQL. Every method rejects with
 * `StoreUnavailableError` when the database cannot be reached or times out,
 * and with `RangeError` for an invalid argument or a BIGINT beyond 2^53 − 1.
 */
export class PgEventReader implements EventReader {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;

  constructor(options: pg.Pool | PgEventReaderOptions) {
    const { pool, owned } = resolvePool(options, { poolSize: 10, applicationName: 'shardwrite-reader' });
    this.#pool = pool;
    this.#ownsPool = owned;
  }

  /**
   * Events of `streamId` with `fromVersion` (default 1) <= version <=
   * `toVersion` (default: to its end), in version order; [] for an unknown
   * stream.
   */
  async readStream(streamId: string, fromVersion = 1, toVersion = Number.MAX_SAFE_INTEGER): Promise<StoredEvent[]> {
    if (!Number.isSafeInteger(fromVersion)) throw new RangeError(`fromVersion ${fromVersion} is not an integer`);
    if (!Number.isSafeInteger(toVersion)) throw new RangeError(`toVersion ${toVersion} is not an integer`);
    const result = await this.#query<EventRow>(
      `SELECT stream_id, version::text AS version, type, schema_version, data, metadata,
              position::text AS position, recorded_at
       FROM events
       WHERE stream_id = $1 AND version >= $2 AND version <= $3
       ORDER BY events.version`,
      [streamId, fromVersion, toVersion],
    );
    return result.rows.map((row) => ({
      streamId: row.stream_id,
      version: toSafeInteger(row.version, 'events.version'),
      type: row.type,
      schemaVersion: row.schema_version,
      data: row.data,
      metadata: row.metadata,
      position: toBigInt(row.position, 'events.position'),
      recordedAt: row.recorded_at,
    }));
  }

  /** Looks up all `keys` in one query; keys never recorded are absent from the result (order unspecified). */
  async findCommands(keys: readonly { streamId: string; commandId: string }[]): Promise<CommandRecord[]> {
    if (keys.length === 0) return [];
    const result = await this.#query<CommandRow>(
      `SELECT r.stream_id, r.command_id, r.first_version::text AS first_version, r.last_version::text AS last_version, r.request_digest
       FROM unnest($1::text[], $2::text[]) AS k(stream_id, command_id)
       JOIN command_results r ON r.stream_id = k.stream_id AND r.command_id = k.command_id`,
      [keys.map((k) => k.streamId), keys.map((k) => k.commandId)],
    );
    return result.rows.map((row) => ({
      streamId: row.stream_id,
      commandId: row.command_id,
      firstVersion: toSafeInteger(row.first_version, 'command_results.first_version'),
      lastVersion: toSafeInteger(row.last_version, 'command_results.last_version'),
      ...(row.request_digest ? { requestDigest: row.request_digest } : {}),
    }));
  }

  /** The tenant of a stream; undefined when the stream does not exist. */
  async streamTenant(streamId: string): Promise<string | undefined> {
    const result = await this.#query<{ tenant: string }>({ name: 'sw-stream-tenant', text: 'SELECT tenant FROM streams WHERE stream_id = $1' }, [streamId]);
    return result.rows[0]?.tenant;
  }

  /** The stream's current version; 0 when it has no events. */
  async streamVersion(streamId: string): Promise<number> {
    const result = await this.#query<{ version: string }>('SELECT version::text AS version FROM streams WHERE stream_id = $1', [streamId]);
    const row = result.rows[0];
    return row === undefined ? 0 : toSafeInteger(row.version, 'streams.version');
  }

  /** Versions of many streams in one query; streams that do not exist are absent. */
  async streamVersions(streamIds: readonly string[]): Promise<Map<string, number>> {
    if (streamIds.length === 0) return new Map();
    const result = await this.#query<{ stream_id: string; version: string }>(
      { name: 'sw-stream-versions', text: 'SELECT stream_id, version::text AS version FROM streams WHERE stream_id = ANY($1::text[])' },
      [streamIds],
    );
    return new Map(result.rows.map((r) => [r.stream_id, toSafeInteger(r.version, 'streams.version')]));
  }

  /** Ends the pool when the reader built it; otherwise does nothing. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }

  async #query<R extends pg.QueryResultRow>(text: string | { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(typeof text === 'string' ? { text, values } : { ...text, values });
    } catch (err) {
      throw translatePgError(err);
    }
  }
}

/**
 * What a rebalance does to one shard's event store, statement by statement.
 * Every operation is idempotent, so a move can be run again from any point.
 *
 * Writes into a store that its shard is writing to at the same time (a copy
 * into a live new owner) take the `shard_fence` row FOR UPDATE first: the
 * shard's group-commit writer takes it FOR SHARE in every batch, so a copy
 * and a batch never overlap, and event positions keep following commit order
 * on that shard (I9).
 *
 * A copied event keeps its `event_id` and records where it was first
 * committed (`origin_*`); subscriptions deliver it from there, and treat the
 * copy as a barrier (see src/subscriptions/). Old copies are never simply
 * deleted: they move to `moved_events`, where a subscriber that has not read
 * them yet still finds them in their place.
 */
import pg from 'pg';
import { toSafeInteger } from '../store/pg-values.js';
import { REBALANCE_SETTING } from '../store/migrations.js';
import { readStoreIdentity, type StoreIdentity } from '../store/store-identity.js';
import type { CopyItem, StreamRow } from './plan.js';

/** A stream row with the epoch it was sealed at, when it was. */
export interface ListedStream extends StreamRow {
  readonly movedAtEpoch: number | undefined;
}

/** What a new owner holds of a stream. */
export interface HeldStream {
  readonly version: number;
  readonly sealed: boolean;
  /** Events stored, and the highest version among them (only from `verify`). */
  readonly events?: number;
  readonly maxVersion?: number;
}

/** Everything of a batch of streams that a copy carries, read in one snapshot of the old owner. */
export interface CopyPayload {
  readonly events: {
    readonly streamId: string;
    readonly version: number;
    readonly type: string;
    readonly schemaVersion: number;
    readonly data: string;
    readonly metadata: string;
    readonly recordedAt: string;
    readonly eventId: string;
    /** Where the event was first committed: its shard, transaction and position there. */
    readonly origin: { readonly shard: string; readonly tx: string; readonly position: string };
  }[];
  readonly commands: { readonly streamId: string; readonly commandId: string; readonly first: number; readonly last: number; readonly requestDigest: string | null }[];
  /** The tenant of each stream (a stream belongs to the same tenant at its new owner). */
  readonly tenants: { readonly streamId: string; readonly tenant: string }[];
  readonly snapshots: {
    readonly streamId: string;
    readonly aggregateType: string;
    readonly version: number;
    readonly schemaVersion: number;
    readonly state: string;
    readonly takenAt: string;
  }[];
}

/** Streams per page when listing a store. */
const LIST_PAGE = 10_000;

export class ShardDb {
  readonly #pool: pg.Pool;

  constructor(
    readonly shardId: string,
    connectionString: string,
    statementTimeoutMs = 60_000,
  ) {
    this.#pool = new pg.Pool({
      connectionString,
      max: 3,
      statement_timeout: statementTimeoutMs,
      connectionTimeoutMillis: 10_000,
      application_name: 'shardwrite-rebalance',
    });
    this.#pool.on('error', () => {});
  }

  /**
   * Every stream not moved away from this store, plus those sealed for the
   * move to `targetEpoch` (a resumed move lists them again), in stream id order.
   */
  async *listStreams(targetEpoch: number): AsyncGenerator<ListedStream[]> {
    let after = '';
    for (;;) {
      const r = await this.#pool.query<{ stream_id: string; aggregate_type: string; aggregate_id: string; version: string; moved_at_epoch: string | null }>(
        `SELECT stream_id, aggregate_type, aggregate_id, version::text, moved_at_epoch::text FROM streams
         WHERE stream_id > $1 AND (moved_at_epoch IS NULL OR moved_at_epoch = $2)
         ORDER BY stream_id LIMIT $3`,
        [after, targetEpoch, LIST_PAGE],
      );
      if (r.rows.length === 0) return;
      yield r.rows.map((row) => ({
        streamId: row.stream_id,
        aggregateType: row.aggregate_type,
        aggregateId: row.aggregate_id,
        version: toSafeInteger(row.version, 'streams.version'),
        movedAtEpoch: row.moved_at_epoch === null ? undefined : toSafeInteger(row.moved_at_epoch, 'streams.moved_at_epoch'),
      }));
      if (r.rows.length < LIST_PAGE) return;
      after = r.rows[r.rows.length - 1]!.stream_id;
    }
  }

  /**
   * The streams with an event after `position` (not moved away, or sealed for
   * `targetEpoch`). Positions follow commit order (I9), so after reading
   * `maxPosition()` these are exactly the streams changed since.
   */
  async changedSince(position: bigint, targetEpoch: number): Promise<ListedStream[]> {
    const r = await this.#pool.query<{ stream_id: string; aggregate_type: string; aggregate_id: string; version: string; moved_at_epoch: string | null }>(
      `SELECT s.stream_id, s.aggregate_type, s.aggregate_id, s.version::text, s.moved_at_epoch::text FROM streams s
       WHERE s.stream_id IN (SELECT DISTINCT stream_id FROM events WHERE position > $1::bigint)
         AND (s.moved_at_epoch IS NULL OR s.moved_at_epoch = $2)`,
      [position.toString(), targetEpoch],
    );
    return r.rows.map((row) => ({
      streamId: row.stream_id,
      aggregateType: row.aggregate_type,
      aggregateId: row.aggregate_id,
      version: toSafeInteger(row.version, 'streams.version'),
      movedAtEpoch: row.moved_at_epoch === null ? undefined : toSafeInteger(row.moved_at_epoch, 'streams.moved_at_epoch'),
    }));
  }

  /** The highest event position committed so far (0 when there is none). */
  async maxPosition(): Promise<bigint> {
    const r = await this.#pool.query<{ p: string }>('SELECT coalesce(max(position), 0)::text AS p FROM events');
    return BigInt(r.rows[0]?.p ?? '0');
  }

  /** The newest event-store migration applied to this store (0 when none). */
  async schemaVersion(): Promise<number> {
    try {
      const r = await this.#pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      return r.rows[0]?.v ?? 0;
    } catch (err) {
      if ((err as { code?: unknown }).code === '42P01') return 0;
      throw err;
    }
  }

  /** The store's id and the shard that claimed it; `undefined` for a store older than store ids. */
  async identity(): Promise<StoreIdentity | undefined> {
    return readStoreIdentity(this.#pool);
  }

  /** Number of streams this store serves (not sealed by any move). */
  async liveStreamCount(): Promise<number> {
    const r = await this.#pool.query<{ n: string }>('SELECT count(*)::text AS n FROM streams WHERE moved_at_epoch IS NULL');
    return toSafeInteger(r.rows[0]?.n ?? '0', 'count');
  }

  /** What this store holds of `streamIds` (absent ones are left out). With `verify`, counts their events too. */
  async held(streamIds: readonly string[], verify = false): Promise<Map<string, HeldStream>> {
    const out = new Map<string, HeldStream>();
    for (let i = 0; i < streamIds.length; i += 5000) {
      const ids = streamIds.slice(i, i + 5000);
      const r = verify
        ? await this.#pool.query<{ stream_id: string; version: string; sealed: boolean; events: string; max_version: string | null }>(
            `SELECT s.stream_id, s.version::text, s.moved_at_epoch IS NOT NULL AS sealed, e.n::text AS events, e.max_version::text AS max_version
             FROM streams s
             CROSS JOIN LATERAL (SELECT count(*) AS n, max(version) AS max_version FROM events WHERE stream_id = s.stream_id) e
             WHERE s.stream_id = ANY($1::text[])`,
            [ids],
          )
        : await this.#pool.query<{ stream_id: string; version: string; sealed: boolean; events: undefined; max_version: undefined }>(
            'SELECT stream_id, version::text, moved_at_epoch IS NOT NULL AS sealed FROM streams WHERE stream_id = ANY($1::text[])',
            [ids],
          );
      for (const row of r.rows) {
        out.set(row.stream_id, {
          version: toSafeInteger(row.version, 'streams.version'),
          sealed: row.sealed,
          ...(verify ? { events: Number(row.events), maxVersion: row.max_version == null ? 0 : Number(row.max_version) } : {}),
        });
      }
    }
    return out;
  }

  /**
   * Reads what `items` need copied, in one REPEATABLE READ snapshot: events
   * in (from, to], the command-id records of those events, and the latest
   * snapshot at or below `to`.
   */
  async read(items: readonly CopyItem[]): Promise<CopyPayload> {
    const ids = items.map((i) => i.streamId);
    const from = items.map((i) => i.from);
    const to = items.map((i) => i.to);
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const window = 'unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(stream_id, from_version, to_version)';
      const events = await client.query<EventRow>(
        `SELECT e.stream_id, e.version::text, e.type, e.schema_version, e.data::text AS data, e.metadata::text AS metadata, e.recorded_at::text AS recorded_at,
                e.event_id::text AS event_id, coalesce(e.origin_shard, $4) AS origin_shard,
                coalesce(e.origin_tx, e.tx)::text AS origin_tx, coalesce(e.origin_position, e.position)::text AS origin_position
         FROM ${window} JOIN events e ON e.stream_id = w.stream_id AND e.version > w.from_version AND e.version <= w.to_version
         ORDER BY e.stream_id, e.version`,
        [ids, from, to, this.shardId],
      );
      const commands = await client.query<{ stream_id: string; command_id: string; first_version: string; last_version: string; request_digest: string | null }>(
        `SELECT r.stream_id, r.command_id, r.first_version::text, r.last_version::text, r.request_digest
         FROM ${window} JOIN command_results r ON r.stream_id = w.stream_id AND r.last_version > w.from_version AND r.last_version <= w.to_version`,
        [ids, from, to],
      );
      const snapshots = await client.query<{ stream_id: string; aggregate_type: string; version: string; schema_version: number; state: string; taken_at: string }>(
        `SELECT s.stream_id, s.aggregate_type, s.version::text, s.schema_version, s.state::text AS state, s.taken_at::text AS taken_at
         FROM ${window} JOIN snapshots s ON s.stream_id = w.stream_id AND s.version <= w.to_version`,
        [ids, from, to],
      );
      const tenants = await client.query<{ stream_id: string; tenant: string }>('SELECT stream_id, tenant FROM streams WHERE stream_id = ANY($1::text[])', [ids]);
      await client.query('COMMIT');
      return {
        tenants: tenants.rows.map((r) => ({ streamId: r.stream_id, tenant: r.tenant })),
        events: events.rows.map((r) => ({
          streamId: r.stream_id,
          version: toSafeInteger(r.version, 'events.version'),
          type: r.type,
          schemaVersion: r.schema_version,
          data: r.data,
          metadata: r.metadata,
          recordedAt: r.recorded_at,
          eventId: r.event_id,
          origin: { shard: r.origin_shard, tx: r.origin_tx, position: r.origin_position },
        })),
        commands: commands.rows.map((r) => ({
          streamId: r.stream_id,
          commandId: r.command_id,
          first: toSafeInteger(r.first_version, 'command_results.first_version'),
          last: toSafeInteger(r.last_version, 'command_results.last_version'),
          requestDigest: r.request_digest,
        })),
        snapshots: snapshots.rows.map((r) => ({
          streamId: r.stream_id,
          aggregateType: r.aggregate_type,
          version: toSafeInteger(r.version, 'snapshots.version'),
          schemaVersion: r.schema_version,
          state: r.state,
          takenAt: r.taken_at,
        })),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Writes a copy into this store (the new owner), in one transaction that
   * holds the fence row FOR UPDATE (see the module comment): drops sealed
   * leftovers of `purge` streams, inserts the events (a repeat inserts
   * nothing), the command-id records, the snapshots (never over a newer one)
   * and moves each streams row up to its `to` version. Returns the events
   * inserted.
   */
  async write(items: readonly CopyItem[], payload: CopyPayload): Promise<number> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT epoch FROM shard_fence WHERE id FOR UPDATE');
      const purge = items.filter((i) => i.purge).map((i) => i.streamId);
      if (purge.length > 0) {
        // A leftover is dropped only while its row says it was moved away (sealed), never a stream served here.
        const live = await client.query<{ stream_id: string }>('SELECT stream_id FROM streams WHERE stream_id = ANY($1::text[]) AND moved_at_epoch IS NULL', [purge]);
        if (live.rows.length > 0) throw new Error(`${this.shardId}: refusing to purge ${live.rows[0]!.stream_id}, which is not sealed here`);
        await archiveEvents(client, purge);
        for (const table of ['command_results', 'snapshots']) {
          await client.query(`DELETE FROM ${table} WHERE stream_id = ANY($1::text[])`, [purge]);
        }
        await client.query('DELETE FROM streams WHERE stream_id = ANY($1::text[]) AND moved_at_epoch IS NOT NULL', [purge]);
      }
      const ev = payload.events;
      const inserted = await client.query(
        `INSERT INTO events (stream_id, version, type, schema_version, data, metadata, recorded_at, event_id, origin_shard, origin_tx, origin_position)
         SELECT x.stream_id, x.version, x.type, x.schema_version, x.data::jsonb, x.metadata::jsonb, x.recorded_at::timestamptz,
                x.event_id::uuid, x.origin_shard, x.origin_tx::xid8, x.origin_position::bigint
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              WITH ORDINALITY AS x(stream_id, version, type, schema_version, data, metadata, recorded_at, event_id, origin_shard, origin_tx, origin_position, ord)
         ORDER BY x.ord
         ON CONFLICT (stream_id, version) DO NOTHING`,
        [
          ev.map((e) => e.streamId),
          ev.map((e) => e.version),
          ev.map((e) => e.type),
          ev.map((e) => e.schemaVersion),
          ev.map((e) => e.data),
          ev.map((e) => e.metadata),
          ev.map((e) => e.recordedAt),
          ev.map((e) => e.eventId),
          ev.map((e) => e.origin.shard),
          ev.map((e) => e.origin.tx),
          ev.map((e) => e.origin.position),
        ],
      );
      const cr = payload.commands;
      if (cr.length > 0) {
        await client.query(
          `INSERT INTO command_results (stream_id, command_id, first_version, last_version, request_digest)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[])
           ON CONFLICT (stream_id, command_id) DO NOTHING`,
          [cr.map((c) => c.streamId), cr.map((c) => c.commandId), cr.map((c) => c.first), cr.map((c) => c.last), cr.map((c) => c.requestDigest)],
        );
      }
      const sn = payload.snapshots;
      if (sn.length > 0) {
        await client.query(
          `INSERT INTO snapshots (stream_id, aggregate_type, version, schema_version, state, taken_at)
           SELECT x.stream_id, x.aggregate_type, x.version, x.schema_version, x.state::json, x.taken_at::timestamptz
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::text[])
                AS x(stream_id, aggregate_type, version, schema_version, state, taken_at)
           ON CONFLICT (stream_id) DO UPDATE
             SET aggregate_type = excluded.aggregate_type, version = excluded.version, schema_version = excluded.schema_version,
                 state = excluded.state, taken_at = excluded.taken_at
             WHERE snapshots.version < excluded.version
                OR (snapshots.version = excluded.version AND snapshots.schema_version < excluded.schema_version)`,
          [sn.map((s) => s.streamId), sn.map((s) => s.aggregateType), sn.map((s) => s.version), sn.map((s) => s.schemaVersion), sn.map((s) => s.state), sn.map((s) => s.takenAt)],
        );
      }
      const tenantOf = new Map(payload.tenants.map((t) => [t.streamId, t.tenant]));
      await client.query(
        `INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version, tenant)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
         ON CONFLICT (stream_id) DO UPDATE SET version = greatest(streams.version, excluded.version)
           WHERE streams.moved_at_epoch IS NULL`,
        [items.map((i) => i.streamId), items.map((i) => i.aggregateType), items.map((i) => i.aggregateId), items.map((i) => i.to), items.map((i) => tenantOf.get(i.streamId) ?? '')],
      );
      await client.query('COMMIT');
      return inserted.rowCount ?? 0;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Sets the move fence to `targetEpoch` (never lowers it). Waits for the
   * writer's batch in flight, which holds the fence row FOR SHARE; every
   * batch after it appends only to streams its writer says stay here.
   */
  async setMoveFence(targetEpoch: number): Promise<void> {
    await this.#pool.query('UPDATE shard_fence SET moving_epoch = $1 WHERE id AND (moving_epoch IS NULL OR moving_epoch < $1)', [targetEpoch]);
  }

  /** Marks `streamIds` moved at `targetEpoch`; returns how many were newly sealed. */
  async seal(streamIds: readonly string[], targetEpoch: number): Promise<number> {
    const r = await this.#pool.query('UPDATE streams SET moved_at_epoch = $2 WHERE stream_id = ANY($1::text[]) AND moved_at_epoch IS NULL', [streamIds, targetEpoch]);
    return r.rowCount ?? 0;
  }

  /** Deletes the old copies of `streamIds` sealed at `targetEpoch` (command ids, snapshots, rows); their events move to `moved_events`. */
  async deleteSealed(streamIds: readonly string[], targetEpoch: number): Promise<number> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const rows = await client.query<{ stream_id: string }>('DELETE FROM streams WHERE stream_id = ANY($1::text[]) AND moved_at_epoch = $2 RETURNING stream_id', [streamIds, targetEpoch]);
      const gone = rows.rows.map((r) => r.stream_id);
      await archiveEvents(client, gone);
      for (const table of ['command_results', 'snapshots']) {
        await client.query(`DELETE FROM ${table} WHERE stream_id = ANY($1::text[])`, [gone]);
      }
      await client.query('COMMIT');
      return gone.length;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Where `streamIds` stand in this store: version and the epoch each was
   * sealed at (absent streams are left out).
   */
  async standing(streamIds: readonly string[]): Promise<Map<string, { version: number; movedAtEpoch: number | undefined }>> {
    const r = await this.#pool.query<{ stream_id: string; version: string; moved_at_epoch: string | null }>(
      'SELECT stream_id, version::text, moved_at_epoch::text FROM streams WHERE stream_id = ANY($1::text[])',
      [streamIds],
    );
    return new Map(
      r.rows.map((row) => [
        row.stream_id,
        {
          version: toSafeInteger(row.version, 'streams.version'),
          movedAtEpoch: row.moved_at_epoch === null ? undefined : toSafeInteger(row.moved_at_epoch, 'streams.moved_at_epoch'),
        },
      ]),
    );
  }

  /**
   * Removes the copies of `streamIds` that an abandoned move wrote into this
   * store (the new owner it never switched to): their events move to
   * `moved_events` (the cleanup's archive path: a subscriber still finds the
   * copies, which it treats as barriers, in their place), their command-id
   * records, snapshots and streams rows go. Only unsealed rows are copies a
   * move can have written, and only they are touched. Takes the fence row
   * FOR UPDATE first, like `write`. Returns the streams and events removed.
   */
  async dropCopies(streamIds: readonly string[]): Promise<{ streams: number; events: number }> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT epoch FROM shard_fence WHERE id FOR UPDATE');
      const rows = await client.query<{ stream_id: string }>('DELETE FROM streams WHERE stream_id = ANY($1::text[]) AND moved_at_epoch IS NULL RETURNING stream_id', [streamIds]);
      const gone = rows.rows.map((r) => r.stream_id);
      const events = await archiveEvents(client, gone);
      for (const table of ['command_results', 'snapshots']) {
        await client.query(`DELETE FROM ${table} WHERE stream_id = ANY($1::text[])`, [gone]);
      }
      await client.query('COMMIT');
      return { streams: gone.length, events };
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Lifts the move fence a move to `targetEpoch` set (a fence of another move is left alone); returns whether it was set. */
  async liftMoveFence(targetEpoch: number): Promise<boolean> {
    const r = await this.#pool.query('UPDATE shard_fence SET moving_epoch = NULL WHERE id AND moving_epoch = $1', [targetEpoch]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Unseals `streamIds` sealed at `targetEpoch` (an abandoned move's seals); returns how many. */
  async unseal(streamIds: readonly string[], targetEpoch: number): Promise<number> {
    const r = await this.#pool.query('UPDATE streams SET moved_at_epoch = NULL WHERE stream_id = ANY($1::text[]) AND moved_at_epoch = $2', [streamIds, targetEpoch]);
    return r.rowCount ?? 0;
  }

  /**
   * A digest of each stream's content up to a version (every field a copy
   * carries: version, type, schema, event id, data, metadata, time), so a
   * copy can be proved equal to its original before the original goes.
   */
  async digests(upTo: ReadonlyMap<string, number>): Promise<Map<string, string>> {
    const ids = [...upTo.keys()];
    const r = await this.#pool.query<{ stream_id: string; digest: string }>(
      `SELECT w.stream_id, md5(coalesce(string_agg(
                concat_ws('|', e.version, e.type, e.schema_version, e.event_id, e.data::text, e.metadata::text, e.recorded_at),
                E'\n' ORDER BY e.version), '')) AS digest
       FROM unnest($1::text[], $2::bigint[]) AS w(stream_id, up_to)
       LEFT JOIN events e ON e.stream_id = w.stream_id AND e.version <= w.up_to
       GROUP BY w.stream_id`,
      [ids, ids.map((id) => upTo.get(id)!)],
    );
    return new Map(r.rows.map((row) => [row.stream_id, row.digest]));
  }

  /** The store's fence epoch. */
  async fence(): Promise<number> {
    const r = await this.#pool.query<{ epoch: string }>('SELECT epoch::text FROM shard_fence WHERE id');
    if (!r.rows[0]) throw new Error(`${this.shardId}: shard_fence has no row (was the store migrated?)`);
    return toSafeInteger(r.rows[0].epoch, 'shard_fence.epoch');
  }

  /** Raises the store's fence to at least `epoch`. */
  async bumpFence(epoch: number): Promise<void> {
    await this.#pool.query('UPDATE shard_fence SET epoch = greatest(epoch, $1::bigint) WHERE id', [epoch]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

interface EventRow {
  stream_id: string;
  version: string;
  type: string;
  schema_version: number;
  data: string;
  metadata: string;
  recorded_at: string;
  event_id: string;
  origin_shard: string;
  origin_tx: string;
  origin_position: string;
}

/**
 * Moves the events of `streamIds` out of `events` into `moved_events`, with
 * their transaction and position unchanged: loads and appends no longer see
 * them, and the store's feed still serves them in their place.
 */
async function archiveEvents(client: pg.ClientBase, streamIds: readonly string[]): Promise<number> {
  // The store refuses deletes of events unless the transaction says it is a rebalance (migration 5).
  await client.query(`SELECT set_config($1, 'on', true)`, [REBALANCE_SETTING]);
  const r = await client.query(
    `WITH gone AS (
       DELETE FROM events WHERE stream_id = ANY($1::text[])
       RETURNING position, stream_id, version, type, schema_version, data, metadata, recorded_at, tx, event_id, origin_shard, origin_tx, origin_position
     )
     INSERT INTO moved_events (position, stream_id, version, type, schema_version, data, metadata, recorded_at, tx, event_id, origin_shard, origin_tx, origin_position)
     SELECT * FROM gone
     ON CONFLICT (position) DO NOTHING`,
    [streamIds],
  );
  return r.rowCount ?? 0;
}

/**
 * The move plan in the ring database (`ring_moves`, ring migration 2): one row
 * per rebalance with its target ring, the phase it reached and its progress
 * figures. At most one row is unfinished at a time (a partial unique index),
 * and a rebalancer holds a session advisory lock while it works, so two
 * operators running the same command take turns instead of racing.
 */
import pg from 'pg';
import { MOVE_NOTIFY_PAYLOAD, RING_CHANNEL, RING_LOCK_KEY } from '../ring/store.js';
import { validateRingDocument, type RingDocument } from '../ring/document.js';
import { toSafeInteger } from '../store/pg-values.js';
import { MOVE_PHASES, RebalanceError, type MoveKind, type MovePhase } from './plan.js';

/**
 * Key of the session advisory lock a rebalancer holds on the ring database
 * for as long as it runs ('rbal' as a 32-bit integer).
 */
export const REBALANCE_LOCK_KEY = 0x7262616c;

/** Figures a move records as it goes (all counts since the move started, over every run). */
export interface MoveFigures {
  /** Streams on the old ring's shards when the move last listed them. */
  readonly streamsSeen: number;
  /** Streams whose owner changes. */
  readonly streamsTotal: number;
  /** Moving streams complete at their new owner as of the last copy pass. */
  readonly streamsCopied: number;
  /** Events written to new owners. */
  readonly eventsCopied: number;
  /** Moving streams sealed at their old owners. */
  readonly streamsSealed: number;
  /** Old copies deleted. */
  readonly streamsCleaned: number;
  /** Milliseconds each finished phase took (over all runs). */
  readonly phaseMs: Readonly<Partial<Record<MovePhase, number>>>;
}

export const NO_FIGURES: MoveFigures = {
  streamsSeen: 0,
  streamsTotal: 0,
  streamsCopied: 0,
  eventsCopied: 0,
  streamsSealed: 0,
  streamsCleaned: 0,
  phaseMs: {},
};

/** One row of `ring_moves`. */
export interface MoveRecord {
  readonly targetEpoch: number;
  readonly kind: MoveKind;
  readonly shardId: string;
  readonly target: RingDocument;
  readonly phase: MovePhase;
  readonly figures: MoveFigures;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | undefined;
  /** The phase the move stood in when `ring abort` began on it; `undefined` unless an abort began. */
  readonly abortedPhase: MovePhase | undefined;
  /** When `ring abort` ended it (it is then finished too); `undefined` unless it was aborted. */
  readonly abortedAt: Date | undefined;
  /** How long ago it started, by the database's clock. */
  readonly ageMs: number;
}

/** The advisory lock of a running rebalancer; `release()` ends its session. */
export interface MoveLock {
  release(): Promise<void>;
}

interface Row {
  target_epoch: string;
  kind: MoveKind;
  shard_id: string;
  target_shards: unknown;
  phase: string;
  progress: Partial<MoveFigures> | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  aborted_at: Date | null;
  aborted_phase: string | null;
  age_ms: number;
}

const COLUMNS = `target_epoch::text, kind, shard_id, target_shards, phase, progress, started_at, updated_at, finished_at, aborted_at, aborted_phase,
  (extract(epoch FROM now() - started_at) * 1000)::float8 AS age_ms`;

/** `ring_moves` on the ring database (already migrated by `PgRingStore.migrate`). */
export class PgMoveStore {
  readonly #pool: pg.Pool;
  readonly #url: string;

  constructor(connectionString: string) {
    this.#url = connectionString;
    this.#pool = new pg.Pool({ connectionString, max: 2, application_name: 'shardwrite-rebalance' });
    this.#pool.on('error', () => {});
  }

  /**
   * Takes the rebalancer lock on a connection of its own, held until
   * `release()` or until this process dies (the session ends with it).
   *
   * @throws RebalanceError when another rebalancer holds it.
   */
  async lock(): Promise<MoveLock> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'shardwrite-rebalance-lock', keepAlive: true });
    client.on('error', () => {});
    await client.connect();
    try {
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [REBALANCE_LOCK_KEY]);
      if (!got.rows[0]?.ok) {
        const holder = await client.query<{ pid: number; application_name: string; client_addr: string | null }>(
          `SELECT a.pid, a.application_name, a.client_addr::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted LIMIT 1`,
          [REBALANCE_LOCK_KEY],
        );
        const h = holder.rows[0];
        throw new RebalanceError(`another rebalancer is running${h ? ` (backend pid ${h.pid}${h.client_addr ? ` from ${h.client_addr}` : ''})` : ''}; wait for it to finish`);
      }
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return {
      release: async () => {
        await client.end().catch(() => {});
      },
    };
  }

  /** The unfinished move, if any. */
  async active(): Promise<MoveRecord | undefined> {
    return this.#one(`SELECT ${COLUMNS} FROM ring_moves WHERE finished_at IS NULL`);
  }

  /** The most recent move, finished or not. */
  async latest(): Promise<MoveRecord | undefined> {
    return this.#one(`SELECT ${COLUMNS} FROM ring_moves ORDER BY target_epoch DESC LIMIT 1`);
  }

  async #one(sql: string): Promise<MoveRecord | undefined> {
    try {
      const r = await this.#pool.query<Row>(sql);
      return r.rows[0] ? toRecord(r.rows[0]) : undefined;
    } catch (err) {
      // undefined_table: no rebalancer-aware process has migrated the ring database yet, so no move ever ran.
      if ((err as { code?: unknown }).code === '42P01') return undefined;
      throw err;
    }
  }

  /**
   * Records a new move in phase `precopy` and tells every router and shard
   * (NOTIFY), so the shards know its target ring before anything is sealed.
   *
   * @throws RebalanceError when another move was recorded meanwhile.
   */
  async create(move: { kind: MoveKind; shardId: string; target: RingDocument }): Promise<MoveRecord> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const r = await client.query<Row>(
        `INSERT INTO ring_moves (target_epoch, kind, shard_id, target_shards, phase, progress)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb) RETURNING ${COLUMNS}`,
        [move.target.epoch, move.kind, move.shardId, JSON.stringify(move.target.shards), MOVE_PHASES[0], JSON.stringify(NO_FIGURES)],
      );
      await client.query('SELECT pg_notify($1, $2)', [RING_CHANNEL, MOVE_NOTIFY_PAYLOAD]);
      await client.query('COMMIT');
      return toRecord(r.rows[0]!);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if ((err as { code?: unknown }).code === '23505') throw new RebalanceError('another move was started at the same time; run `shardwrite ring status`');
      throw err;
    } finally {
      client.release();
    }
  }

  /** Saves the figures (and the phase, when given) of the unfinished move at `targetEpoch`. */
  async save(targetEpoch: number, figures: MoveFigures, phase?: MovePhase): Promise<void> {
    await this.#pool.query(
      `UPDATE ring_moves SET progress = $2::jsonb, phase = coalesce($3, phase), updated_at = now()
       WHERE target_epoch = $1 AND finished_at IS NULL`,
      [targetEpoch, JSON.stringify(figures), phase ?? null],
    );
  }

  /** Marks the move finished (phase `done`) and tells every process that the move is over. */
  async finish(targetEpoch: number, figures: MoveFigures): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `UPDATE ring_moves SET phase = 'done', progress = $2::jsonb, updated_at = now(), finished_at = now()
         WHERE target_epoch = $1 AND finished_at IS NULL`,
        [targetEpoch, JSON.stringify(figures)],
      );
      await client.query('SELECT pg_notify($1, $2)', [RING_CHANNEL, MOVE_NOTIFY_PAYLOAD]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * First step of an abort: records the phase the move stood in and rewinds
   * it to `precopy`, the phase in which nothing is sealed and copies are only
   * copies. An abort that stops half-way leaves a move that `ring abort`
   * finishes — or that `ring add|remove`, run again instead, carries out from
   * the start, sealing again before it trusts any copy.
   */
  async rewindForAbort(targetEpoch: number): Promise<void> {
    await this.#pool.query(
      `UPDATE ring_moves SET aborted_phase = coalesce(aborted_phase, phase), phase = $2, updated_at = now()
       WHERE target_epoch = $1 AND finished_at IS NULL`,
      [targetEpoch, MOVE_PHASES[0]],
    );
  }

  /**
   * Last step of an abort, in one transaction: publishes `ring` (the old
   * membership at the move's target epoch, so the next move takes the epoch
   * after it and every process hears of the change) and marks the move
   * finished and aborted.
   *
   * @throws RebalanceError when the ring is no longer at the epoch before
   *   `ring` (someone published meanwhile).
   */
  async abandon(targetEpoch: number, ring: RingDocument, figures: MoveFigures): Promise<void> {
    if (ring.epoch !== targetEpoch) throw new RangeError(`an aborted move to epoch ${targetEpoch} publishes that epoch (got ${ring.epoch})`);
    const doc = validateRingDocument(ring);
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [RING_LOCK_KEY]);
      const max = await client.query<{ epoch: string | null }>('SELECT max(epoch)::text AS epoch FROM ring_epochs');
      const current = max.rows[0]?.epoch == null ? 0 : toSafeInteger(max.rows[0].epoch, 'ring epoch');
      if (current !== targetEpoch - 1) throw new RebalanceError(`the ring is at epoch ${current}, not ${targetEpoch - 1}: refusing to publish the abort`);
      await client.query('INSERT INTO ring_epochs (epoch, shards) VALUES ($1, $2::jsonb)', [doc.epoch, JSON.stringify(doc.shards)]);
      await client.query(
        `UPDATE ring_moves SET aborted_at = now(), finished_at = now(), updated_at = now(), progress = $2::jsonb
         WHERE target_epoch = $1 AND finished_at IS NULL`,
        [targetEpoch, JSON.stringify(figures)],
      );
      await client.query('SELECT pg_notify($1, $2)', [RING_CHANNEL, String(doc.epoch)]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function toRecord(row: Row): MoveRecord {
  const target = validateRingDocument({ epoch: toSafeInteger(row.target_epoch, 'ring_moves.target_epoch'), shards: row.target_shards });
  return {
    targetEpoch: target.epoch,
    kind: row.kind,
    shardId: row.shard_id,
    target,
    phase: toPhase(row.phase),
    figures: { ...NO_FIGURES, ...(row.progress ?? {}) },
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at ?? undefined,
    abortedPhase: row.aborted_phase === null ? undefined : toPhase(row.aborted_phase),
    abortedAt: row.aborted_at ?? undefined,
    ageMs: row.age_ms,
  };
}

function toPhase(phase: string): MovePhase {
  if (!(MOVE_PHASES as readonly string[]).includes(phase)) throw new Error(`ring_moves: unknown phase "${phase}"`);
  return phase as MovePhase;
}

/**
 * The worker's two small tables, in the ring database (one per cluster, like
 * the consumer groups' checkpoints):
 *
 * - `pm_timeouts`: armed timeouts, one row each, written when the worker
 *   carries out the step that armed them (before that step is acknowledged)
 *   and deleted once the fired timeout is recorded on its instance. The
 *   instance stream is the truth (a timeout disarmed there is ignored when it
 *   fires); this table is the index the scanner needs to find what is due
 *   without reading every instance.
 * - `pm_instances`: each instance's last known status (from the `status` its
 *   events carry, newest version wins), for `pm list` and the metrics.
 */
import pg from 'pg';
import type { ArmedTimeout, InstanceStatus } from '../src/process-managers/index.js';
import { PM_TABLES_SQL } from '../src/ring/index.js';

export interface DueTimeout {
  readonly processManager: string;
  readonly instanceId: string;
  readonly timeoutId: string;
}

export interface StatusRow {
  readonly streamId: string;
  readonly processManager: string;
  readonly instanceId: string;
  readonly status: string;
  readonly version: number;
  readonly reason?: string;
}

export interface InstanceRow {
  readonly streamId: string;
  readonly processManager: string;
  readonly instanceId: string;
  readonly status: InstanceStatus;
  readonly version: number;
  readonly reason: string | undefined;
  readonly updatedAt: Date;
}

export class PgPmStore {
  readonly #pool: pg.Pool;

  constructor(options: { connectionString: string; max?: number }) {
    this.#pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 4, application_name: 'shardwrite-pm' });
    this.#pool.on('error', () => {});
  }

  /**
   * Creates the tables when missing (idempotent, safe with several workers).
   * In the ring database the ring's migration 8 creates them, with the grants
   * of role shardwrite_pm: present, they are left alone, so a worker whose
   * login may not CREATE starts.
   */
  async migrate(): Promise<void> {
    const c = await this.#pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock(hashtext($1))', ['shardwrite_pm_migrate']);
      const present = await c.query<{ ready: boolean }>(`SELECT to_regclass('pm_timeouts') IS NOT NULL AND to_regclass('pm_instances') IS NOT NULL AS ready`);
      if (present.rows[0]?.ready) return;
      await c.query(PM_TABLES_SQL);
    } finally {
      await c.query('SELECT pg_advisory_unlock(hashtext($1))', ['shardwrite_pm_migrate']).catch(() => {});
      c.release();
    }
  }

  async arm(processManager: string, instanceId: string, timeouts: readonly ArmedTimeout[]): Promise<void> {
    if (timeouts.length === 0) return;
    await this.#pool.query(
      `INSERT INTO pm_timeouts (process_manager, instance_id, timeout_id, due_at)
       SELECT $1, $2, t.id, t.due FROM unnest($3::text[], $4::timestamptz[]) AS t(id, due)
       ON CONFLICT DO NOTHING`,
      [processManager, instanceId, timeouts.map((t) => t.id), timeouts.map((t) => t.dueAt)],
    );
  }

  async disarm(processManager: string, instanceId: string, timeoutIds: readonly string[]): Promise<void> {
    if (timeoutIds.length === 0) return;
    await this.#pool.query('DELETE FROM pm_timeouts WHERE process_manager = $1 AND instance_id = $2 AND timeout_id = ANY($3)', [processManager, instanceId, timeoutIds]);
  }

  /** Timeouts due now (database clock), earliest first. */
  async due(limit: number): Promise<DueTimeout[]> {
    const { rows } = await this.#pool.query<{ process_manager: string; instance_id: string; timeout_id: string }>(
      'SELECT process_manager, instance_id, timeout_id FROM pm_timeouts WHERE due_at <= now() ORDER BY due_at LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({ processManager: r.process_manager, instanceId: r.instance_id, timeoutId: r.timeout_id }));
  }

  /** Records instances' statuses as of their versions (one statement); an older version never overwrites a newer one. */
  async recordStatuses(rows: readonly StatusRow[]): Promise<void> {
    // One row per stream (the newest): a statement may not update a row twice.
    const latest = new Map<string, StatusRow>();
    for (const r of rows) if ((latest.get(r.streamId)?.version ?? -1) < r.version) latest.set(r.streamId, r);
    if (latest.size === 0) return;
    const list = [...latest.values()];
    await this.#pool.query(
      `INSERT INTO pm_instances (stream_id, process_manager, instance_id, status, version, reason)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
       ON CONFLICT (stream_id) DO UPDATE SET status = excluded.status, version = excluded.version,
         reason = CASE WHEN excluded.status = 'parked' THEN COALESCE(excluded.reason, pm_instances.reason) ELSE NULL END, updated_at = now()
       WHERE pm_instances.version < excluded.version`,
      [list.map((r) => r.streamId), list.map((r) => r.processManager), list.map((r) => r.instanceId), list.map((r) => r.status), list.map((r) => r.version), list.map((r) => r.reason ?? null)],
    );
  }

  /** Instances, optionally only those with `status`, oldest change first. */
  async list(options: { status?: InstanceStatus; limit?: number } = {}): Promise<InstanceRow[]> {
    const { rows } = await this.#pool.query<{
      stream_id: string;
      process_manager: string;
      instance_id: string;
      status: InstanceStatus;
      version: string;
      reason: string | null;
      updated_at: Date;
    }>(
      `SELECT stream_id, process_manager, instance_id, status, version, reason, updated_at FROM pm_instances
       WHERE ($1::text IS NULL OR status = $1) ORDER BY updated_at LIMIT $2`,
      [options.status ?? null, options.limit ?? 1000],
    );
    return rows.map((r) => ({
      streamId: r.stream_id,
      processManager: r.process_manager,
      instanceId: r.instance_id,
      status: r.status,
      version: Number(r.version),
      reason: r.reason ?? undefined,
      updatedAt: r.updated_at,
    }));
  }

  /** Instances by process manager and status, and armed timeouts by process manager. */
  async counts(): Promise<{ instances: { processManager: string; status: string; count: number }[]; timeouts: { processManager: string; count: number }[] }> {
    const [a, b] = await Promise.all([
      this.#pool.query<{ process_manager: string; status: string; n: string }>('SELECT process_manager, status, count(*) AS n FROM pm_instances GROUP BY 1, 2'),
      this.#pool.query<{ process_manager: string; n: string }>('SELECT process_manager, count(*) AS n FROM pm_timeouts GROUP BY 1'),
    ]);
    return {
      instances: a.rows.map((r) => ({ processManager: r.process_manager, status: r.status, count: Number(r.n) })),
      timeouts: b.rows.map((r) => ({ processManager: r.process_manager, count: Number(r.n) })),
    };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

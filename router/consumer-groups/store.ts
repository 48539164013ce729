/**
 * The durable state of consumer groups, in the ring database: groups,
 * per-partition checkpoints and leases, and live members.
 *
 * Every time is the database's `now()`, never a router's clock, so routers
 * with skewed clocks agree on which lease has expired. A checkpoint is only
 * written by the lease's current owner (`owner = $member` in the same
 * statement), so a router that lost a lease — it stalled past the expiry and
 * another member took the partition — can never move a checkpoint backwards
 * or forwards under the new owner.
 */
import pg from 'pg';
import { listen } from '../../src/store/pg-listen.js';
import { ConsumerGroupMismatchError, StoreUnavailableError } from '../../src/errors.js';
import { byCodeUnits } from './assignment.js';
import { migrateGroupSchema } from './schema.js';

/**
 * The NOTIFY channel on which a member's arrival or departure and a released
 * partition are announced (payload: the group name), so the other routers
 * rebalance at once instead of at their next heartbeat.
 */
export const GROUPS_CHANNEL = 'shardwrite_groups';

/** A LISTEN session; `close()` ends it. */
export interface GroupListener {
  close(): Promise<void>;
}

/** What the first join of a group fixes. */
export interface GroupSpec {
  readonly name: string;
  readonly partitionCount: number;
  /** Sorted, without duplicates (empty = all). */
  readonly aggregateTypes: readonly string[];
  readonly eventTypes: readonly string[];
}

/** A member's view after a heartbeat. */
export interface Heartbeat {
  /** Live members of the group (this one included), sorted by id. */
  readonly members: string[];
  /** Partitions whose lease this member holds (renewed by this heartbeat). */
  readonly leased: Set<number>;
}

/** A group's checkpoints, for lag. */
export interface GroupCheckpoints {
  readonly group: string;
  /** Index = partition. */
  readonly checkpoints: string[];
}

export interface PgGroupStoreOptions {
  readonly connectionString: string;
  /** Bound on connecting and on each statement; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Where idle-connection errors go; default: ignored (the next query reports them). */
  readonly onIdleError?: (err: Error) => void;
}

/** Consumer-group state in PostgreSQL (see the module comment). */
export class PgGroupStore {
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  readonly #timeoutMs: number;

  constructor(options: PgGroupStoreOptions) {
    const timeoutMs = options.timeoutMs ?? 5000;
    this.#connectionString = options.connectionString;
    this.#timeoutMs = timeoutMs;
    // A few small statements per member per heartbeat, and checkpoint flushes.
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      application_name: 'shardwrite-groups',
    });
    this.#pool.on('error', (err) => options.onIdleError?.(err));
  }

  /** Creates or upgrades the schema (see `migrateGroupSchema`). */
  migrate(): Promise<void> {
    return migrateGroupSchema(this.#pool);
  }

  /**
   * The group named `spec.name`, created with `spec` (every partition at
   * `initialCheckpoint()`) when it does not exist yet. Concurrent first joins
   * create it once.
   *
   * @throws ConsumerGroupMismatchError when it exists with other filters;
   *   StoreUnavailableError when the database fails; whatever `initialCheckpoint` throws.
   */
  async ensureGroup(spec: GroupSpec, initialCheckpoint: () => Promise<string>): Promise<GroupSpec> {
    let group = await unavailableOnFailure(() => this.#readGroup(spec.name));
    if (!group) {
      const checkpoint = await initialCheckpoint();
      await unavailableOnFailure(() =>
        this.#transaction(async (c) => {
          const created = await c.query(
            `INSERT INTO consumer_groups (name, partition_count, aggregate_types, event_types)
           VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
            [spec.name, spec.partitionCount, spec.aggregateTypes, spec.eventTypes],
          );
          if (created.rowCount === 1) {
            await c.query(
              `INSERT INTO consumer_group_partitions (group_name, partition, checkpoint)
             SELECT $1, p, $3 FROM generate_series(0, $2 - 1) AS p`,
              [spec.name, spec.partitionCount, checkpoint],
            );
          }
        }),
      );
      group = await unavailableOnFailure(() => this.#readGroup(spec.name));
      if (!group) throw new Error(`consumer group ${spec.name} vanished right after it was created`);
    }
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same(group.aggregateTypes, spec.aggregateTypes) || !same(group.eventTypes, spec.eventTypes)) {
      throw new ConsumerGroupMismatchError(
        spec.name,
        `consumer group ${spec.name} follows aggregate types [${group.aggregateTypes.join(', ')}] and event types [${group.eventTypes.join(', ')}]; join it with the same filters`,
      );
    }
    return group;
  }

  /**
   * Registers or renews member `memberId` for `ttlMs` and renews every lease
   * it still holds, then reads the live members. Members expired for longer
   * than a lease are deleted on the way.
   */
  async heartbeat(group: string, memberId: string, memberName: string, ttlMs: number): Promise<Heartbeat> {
    return this.#transaction(async (c) => {
      const joined = await c.query<{ inserted: boolean }>(
        `INSERT INTO consumer_group_members (group_name, member_id, member_name, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
         ON CONFLICT (group_name, member_id)
           DO UPDATE SET heartbeat_at = now(), expires_at = excluded.expires_at
         RETURNING (xmax = 0) AS inserted`,
        [group, memberId, memberName, ttlMs],
      );
      // Sent at commit: the others see the new member when they re-read.
      if (joined.rows[0]?.inserted) await c.query('SELECT pg_notify($1, $2)', [GROUPS_CHANNEL, group]);
      const leased = await c.query<{ partition: number }>(
        `UPDATE consumer_group_partitions SET lease_expires_at = now() + $3 * interval '1 millisecond'
         WHERE group_name = $1 AND owner = $2 RETURNING partition`,
        [group, memberId, ttlMs],
      );
      await c.query(
        `DELETE FROM consumer_group_members
         WHERE group_name = $1 AND expires_at < now() - $2 * interval '1 millisecond'`,
        [group, ttlMs],
      );
      const members = await c.query<{ member_id: string }>(`SELECT member_id FROM consumer_group_members WHERE group_name = $1 AND expires_at > now()`, [group]);
      return {
        members: members.rows.map((r) => r.member_id).sort(byCodeUnits),
        leased: new Set(leased.rows.map((r) => r.partition)),
      };
    });
  }

  /**
   * Takes the lease of each of `partitions` that is free, expired, or already
   * this member's, for `ttlMs`.
   *
   * @returns the partitions taken, each with its checkpoint.
   */
  async acquire(group: string, memberId: string, partitions: readonly number[], ttlMs: number): Promise<Map<number, string>> {
    if (partitions.length === 0) return new Map();
    const taken = await this.#pool.query<{ partition: number; checkpoint: string }>(
      `UPDATE consumer_group_partitions
       SET owner = $2, lease_expires_at = now() + $4 * interval '1 millisecond'
       WHERE group_name = $1 AND partition = ANY($3::int[])
         AND (owner IS NULL OR owner = $2 OR lease_expires_at <= now())
       RETURNING partition, checkpoint`,
      [group, memberId, partitions, ttlMs],
    );
    return new Map(taken.rows.map((r) => [r.partition, r.checkpoint]));
  }

  /**
   * Writes the checkpoints of partitions this member still holds.
   *
   * @returns the partitions written; any other was leased to someone else.
   */
  async saveCheckpoints(group: string, memberId: string, checkpoints: ReadonlyMap<number, string>): Promise<Set<number>> {
    if (checkpoints.size === 0) return new Set();
    const saved = await this.#pool.query<{ partition: number }>(
      `UPDATE consumer_group_partitions AS p SET checkpoint = v.checkpoint, checkpointed_at = now()
       FROM unnest($3::int[], $4::text[]) AS v (partition, checkpoint)
       WHERE p.group_name = $1 AND p.owner = $2 AND p.partition = v.partition
       RETURNING p.partition`,
      [group, memberId, [...checkpoints.keys()], [...checkpoints.values()]],
    );
    return new Set(saved.rows.map((r) => r.partition));
  }

  /**
   * Writes the final checkpoints of `checkpoints`' partitions and gives their
   * leases up, in one transaction (only those this member still holds).
   */
  async release(group: string, memberId: string, checkpoints: ReadonlyMap<number, string>): Promise<void> {
    if (checkpoints.size === 0) return;
    await this.#transaction(async (c) => {
      await c.query(
        `UPDATE consumer_group_partitions AS p
         SET checkpoint = v.checkpoint, checkpointed_at = now(), owner = NULL, lease_expires_at = NULL
         FROM unnest($3::int[], $4::text[]) AS v (partition, checkpoint)
         WHERE p.group_name = $1 AND p.owner = $2 AND p.partition = v.partition`,
        [group, memberId, [...checkpoints.keys()], [...checkpoints.values()]],
      );
      await c.query('SELECT pg_notify($1, $2)', [GROUPS_CHANNEL, group]);
    });
  }

  /**
   * Gives up leases of `partitions` this member holds without delivering them
   * (an acquire whose answer was lost), leaving their checkpoints as they are.
   */
  async abandon(group: string, memberId: string, partitions: readonly number[]): Promise<void> {
    if (partitions.length === 0) return;
    await this.#transaction(async (c) => {
      await c.query(
        `UPDATE consumer_group_partitions SET owner = NULL, lease_expires_at = NULL
         WHERE group_name = $1 AND owner = $2 AND partition = ANY($3::int[])`,
        [group, memberId, partitions],
      );
      await c.query('SELECT pg_notify($1, $2)', [GROUPS_CHANNEL, group]);
    });
  }

  /** Releases `checkpoints`' partitions (as `release`) and removes the member, in one transaction. */
  async leave(group: string, memberId: string, checkpoints: ReadonlyMap<number, string>): Promise<void> {
    await this.#transaction(async (c) => {
      await c.query(
        `UPDATE consumer_group_partitions AS p
         SET checkpoint = v.checkpoint, checkpointed_at = now()
         FROM unnest($3::int[], $4::text[]) AS v (partition, checkpoint)
         WHERE p.group_name = $1 AND p.owner = $2 AND p.partition = v.partition`,
        [group, memberId, [...checkpoints.keys()], [...checkpoints.values()]],
      );
      // Every lease it holds goes, also one taken while the session was ending.
      await c.query(`UPDATE consumer_group_partitions SET owner = NULL, lease_expires_at = NULL WHERE group_name = $1 AND owner = $2`, [group, memberId]);
      await c.query('DELETE FROM consumer_group_members WHERE group_name = $1 AND member_id = $2', [group, memberId]);
      await c.query('SELECT pg_notify($1, $2)', [GROUPS_CHANNEL, group]);
    });
  }

  /**
   * Calls `onGroup` with the group named in every announcement from now on
   * (see `GROUPS_CHANNEL`), until closed or the connection is lost (then
   * `onLost`, once).
   */
  listen(onGroup: (group: string) => void, onLost: (err: Error) => void): Promise<GroupListener> {
    return listen({
      connectionString: this.#connectionString,
      connectionTimeoutMillis: this.#timeoutMs,
      channel: GROUPS_CHANNEL,
      applicationName: 'shardwrite-groups-listener',
      onPayload: (group) => {
        if (group) onGroup(group);
      },
      onLost,
    });
  }

  /** Every group's partition checkpoints. */
  async checkpoints(): Promise<GroupCheckpoints[]> {
    const rows = await this.#pool.query<{ group_name: string; checkpoints: string[] }>(
      `SELECT group_name, array_agg(checkpoint ORDER BY partition) AS checkpoints
       FROM consumer_group_partitions GROUP BY group_name`,
    );
    return rows.rows.map((r) => ({ group: r.group_name, checkpoints: r.checkpoints }));
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #readGroup(name: string): Promise<GroupSpec | undefined> {
    const r = await this.#pool.query<{ name: string; partition_count: number; aggregate_types: string[]; event_types: string[] }>(
      'SELECT name, partition_count, aggregate_types, event_types FROM consumer_groups WHERE name = $1',
      [name],
    );
    const row = r.rows[0];
    return row && { name: row.name, partitionCount: row.partition_count, aggregateTypes: row.aggregate_types, eventTypes: row.event_types };
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const value = await work(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** A failure of the ring database, as a caller should see it: UNAVAILABLE, retry later. */
async function unavailableOnFailure<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new StoreUnavailableError('the consumer group database is unavailable', { cause: err });
  }
}

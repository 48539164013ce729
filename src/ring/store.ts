/**
 * The ring's one durable source of truth: a table of epochs in a PostgreSQL
 * "ring database" (`RING_DATABASE_URL`). Every router and shard reads the
 * newest epoch from it and is told of a new one by LISTEN/NOTIFY.
 *
 * Why PostgreSQL: it is durable and transactional (a rebalancer publishes the
 * next epoch with a compare-and-set, and can later record its move plan in the
 * same transaction), every deployment already runs it, and it behaves the
 * same under `npm start`, docker-compose and Kubernetes — no extra
 * coordination service to run, secure and back up.
 */
import pg from 'pg';
import { listen } from '../store/pg-listen.js';
import { toSafeInteger } from '../store/pg-values.js';
import { applyPending, isCurrent, type MigratedSchema, type Migration } from '../store/schema-migrations.js';
import { StoreIdentityError } from '../store/store-identity.js';
import { validateRingDocument, type RingDocument } from './document.js';
import { redactDatabaseUrl, withoutPassword } from '../store/database-url.js';
import { CREATE_ROLES_SQL, PM_ROLE, REBALANCER_ROLE, ROUTER_ROLE, SHARD_ROLE, createRolesSql, grantConnectSql } from '../store/roles.js';

/** Where a shard keeps its events, as it registered it. */
export interface RegisteredStore {
  readonly databaseUrl: string;
  /** The store's id (`store_identity`); `undefined` for a registration made before store ids existed. */
  readonly storeId: string | undefined;
}

/** The NOTIFY channel a publish signals on; the payload is the new epoch. */
export const RING_CHANNEL = 'shardwrite_ring';

/**
 * Key of the transaction-scoped advisory lock taken by the ring's migrations
 * and by every write, so concurrent starts and publishers take turns.
 * ('ring' as a 32-bit integer; the event store's migrations use 'shrw'.)
 */
export const RING_LOCK_KEY = 0x72696e67;

const RING_SCHEMA: MigratedSchema = { label: 'ring', table: 'ring_schema_migrations', lockKey: RING_LOCK_KEY };

/** The ring database's schema, oldest first. Never edit an applied one: add one. */
/**
 * The process managers' tables in the ring database (`pm-worker/store.ts`):
 * due timeouts, and each instance's status. Idempotent: ring migration 8
 * runs it with the grants of role shardwrite_pm, and a worker runs it on a
 * ring database migrated before that.
 */
export const PM_TABLES_SQL = `
  CREATE TABLE IF NOT EXISTS pm_timeouts (
    process_manager text NOT NULL,
    instance_id text NOT NULL,
    timeout_id text NOT NULL,
    due_at timestamptz NOT NULL,
    PRIMARY KEY (process_manager, instance_id, timeout_id)
  );
  CREATE INDEX IF NOT EXISTS pm_timeouts_due ON pm_timeouts (due_at);
  CREATE TABLE IF NOT EXISTS pm_instances (
    stream_id text PRIMARY KEY,
    process_manager text NOT NULL,
    instance_id text NOT NULL,
    status text NOT NULL,
    version bigint NOT NULL,
    reason text,
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX IF NOT EXISTS pm_instances_status ON pm_instances (process_manager, status);
`;

const RING_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'ring epochs',
    sql: `
      -- One row per ring version; the current ring is the row with the highest epoch.
      CREATE TABLE ring_epochs (
        epoch      bigint      PRIMARY KEY CHECK (epoch > 0),
        shards     jsonb       NOT NULL CHECK (jsonb_typeof(shards) = 'array'),
        created_at timestamptz NOT NULL DEFAULT now()
      );
      -- An epoch means one shard list forever: a change is a new epoch, never an edit.
      CREATE FUNCTION ring_epochs_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'ring epochs are immutable: publish a new epoch instead'; END
      $$;
      CREATE TRIGGER ring_epochs_immutable BEFORE UPDATE ON ring_epochs
        FOR EACH ROW EXECUTE FUNCTION ring_epochs_immutable();
    `,
  },
  {
    version: 2,
    name: 'shard stores and moves',
    sql: `
      -- Where each shard keeps its events: every shard registers its own DATABASE_URL at
      -- start-up, so a rebalance needs only shard ids and gRPC addresses.
      CREATE TABLE shard_stores (
        shard_id      text        PRIMARY KEY,
        database_url  text        NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now()
      );
      -- One row per rebalance (src/rebalance): the ring it moves to and how far it got.
      CREATE TABLE ring_moves (
        target_epoch  bigint      PRIMARY KEY CHECK (target_epoch > 1),
        kind          text        NOT NULL CHECK (kind IN ('add', 'remove')),
        shard_id      text        NOT NULL,
        target_shards jsonb       NOT NULL CHECK (jsonb_typeof(target_shards) = 'array'),
        phase         text        NOT NULL,
        progress      jsonb       NOT NULL DEFAULT '{}',
        started_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        finished_at   timestamptz NULL
      );
      -- At most one move in progress.
      CREATE UNIQUE INDEX ring_moves_one_active ON ring_moves ((true)) WHERE finished_at IS NULL;
    `,
  },
  {
    version: 3,
    name: 'ring epochs are never deleted',
    // The ring's history is what fencing and subscriptions rely on (a shard that left is still found by it).
    sql: `
      CREATE TRIGGER ring_epochs_kept BEFORE DELETE OR TRUNCATE ON ring_epochs
        FOR EACH STATEMENT EXECUTE FUNCTION ring_epochs_immutable();
    `,
  },
  {
    version: 4,
    name: 'shard store ids',
    // The store id each shard's store was created with (src/store/store-identity.ts):
    // set by the shard's first registration, after which a registration of the
    // same shard id with another store is refused. Rows from before this
    // migration adopt the store id of their shard's next registration.
    sql: `ALTER TABLE shard_stores ADD COLUMN store_id uuid NULL;`,
  },
  {
    version: 5,
    name: 'aborted moves',
    // `shardwrite ring abort` ends a move without switching to its ring: when, and in which phase it stood.
    sql: `ALTER TABLE ring_moves ADD COLUMN aborted_at timestamptz NULL, ADD COLUMN aborted_phase text NULL;`,
  },
  {
    version: 6,
    name: 'no passwords, least-privilege roles',
    // The ring database holds no secret: registered store URLs lose their passwords (a
    // process brings its own credentials), and a CHECK keeps new ones out. Group roles
    // as in the event store (src/store/migrations.ts): routers read the ring, shards
    // read it and register their store, the rebalancer publishes epochs and records moves.
    sql: `
      UPDATE shard_stores SET database_url =
        regexp_replace(regexp_replace(database_url, '^([^:/]+://[^/@:]*):[^/@]*@', '\\1@'), '([?&])(ssl)?password=[^&]*&?', '\\1', 'g');
      ALTER TABLE shard_stores ADD CONSTRAINT shard_stores_no_password
        CHECK (database_url !~ '^[^:/]+://[^/@]*:[^/@]*@' AND database_url !~* '[?&](ssl)?password=');
      ${CREATE_ROLES_SQL}
      ${grantConnectSql([SHARD_ROLE, REBALANCER_ROLE, ROUTER_ROLE])}
      REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${SHARD_ROLE}, ${REBALANCER_ROLE}, ${ROUTER_ROLE};
      GRANT USAGE ON SCHEMA public TO ${SHARD_ROLE}, ${REBALANCER_ROLE}, ${ROUTER_ROLE};
      GRANT SELECT ON ring_schema_migrations, ring_epochs, ring_moves TO ${SHARD_ROLE}, ${REBALANCER_ROLE}, ${ROUTER_ROLE};
      GRANT SELECT, INSERT, UPDATE ON shard_stores TO ${SHARD_ROLE}, ${REBALANCER_ROLE};
      GRANT INSERT ON ring_epochs TO ${REBALANCER_ROLE};
      GRANT INSERT, UPDATE ON ring_moves TO ${REBALANCER_ROLE};
    `,
  },
  {
    version: 7,
    name: 'subject keys',
    // Crypto-shredding (src/privacy/): one data key per data subject, wrapped by the master key,
    // here because every shard that holds a subject's events must use the same key. A row with
    // no key is a tombstone: the subject was erased, and INSERT … ON CONFLICT DO NOTHING from a
    // late writer can never create a key for it again (only an explicit re-enable does).
    sql: `
      CREATE TABLE subject_keys (
        subject_id    text        PRIMARY KEY,
        wrapped_key   bytea       NULL,
        master_key_id text        NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        erased_at     timestamptz NULL,
        CONSTRAINT subject_keys_key_or_tombstone CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
      );
      GRANT SELECT, INSERT, UPDATE ON subject_keys TO ${SHARD_ROLE};
    `,
  },
  {
    version: 8,
    name: 'process-manager role',
    // The pm worker's tables (pm-worker/store.ts; IF NOT EXISTS adopts those a worker made
    // under the owner's login before this migration) and its role: it arms, scans and disarms
    // timeouts and records instances' statuses; it reads nothing else of the ring database.
    sql: `
      ${PM_TABLES_SQL}
      ${createRolesSql([PM_ROLE])}
      ${grantConnectSql([PM_ROLE])}
      REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${PM_ROLE};
      GRANT USAGE ON SCHEMA public TO ${PM_ROLE};
      GRANT SELECT ON ring_schema_migrations TO ${PM_ROLE};
      GRANT SELECT, INSERT, DELETE ON pm_timeouts TO ${PM_ROLE};
      GRANT SELECT, INSERT, UPDATE ON pm_instances TO ${PM_ROLE};
    `,
  },
];

/** Whether every ring migration this code knows is applied (read only; see {@link isCurrent}). */
export function ringSchemaIsCurrent(client: Pick<pg.ClientBase, 'query'>): Promise<boolean> {
  return isCurrent(client, RING_SCHEMA, RING_MIGRATIONS);
}

/** The NOTIFY payload a rebalance sends when its plan appears or ends (read as "re-read everything"). */
export const MOVE_NOTIFY_PAYLOAD = 'move';

/** `publish` lost a race: the ring is no longer at the epoch the caller based its change on. */
export class RingConflictError extends Error {
  constructor(
    readonly expectedEpoch: number,
    readonly currentEpoch: number,
  ) {
    super(`the ring is at epoch ${currentEpoch}, not ${expectedEpoch}`);
    this.name = 'RingConflictError';
  }
}

/** A LISTEN session; `close()` ends it. */
export interface RingSubscription {
  close(): Promise<void>;
}

/** Reads and writes ring documents. Implemented by `PgRingStore`. */
export interface RingStore {
  /** The newest ring, or `undefined` while none was ever written. */
  current(): Promise<RingDocument | undefined>;
  /**
   * Writes `doc` as the first ring unless a ring exists, and returns the
   * current ring either way: with many processes starting at once, the first
   * writer wins and everyone gets its ring.
   */
  initIfEmpty(doc: RingDocument): Promise<RingDocument>;
  /**
   * Compare-and-set: writes `next` (whose epoch must be `expectedEpoch + 1`)
   * only if the current epoch is `expectedEpoch` (0 = no ring yet), and
   * notifies every listener. Throws `RingConflictError` otherwise.
   */
  publish(next: RingDocument, expectedEpoch: number): Promise<RingDocument>;
  /**
   * Calls `onEpoch` with the epoch of every ring published from now on, until
   * the subscription is closed or the connection is lost (then `onLost`, once).
   */
  listen(onEpoch: (epoch: number) => void, onLost: (err: Error) => void): Promise<RingSubscription>;
  /**
   * The ring the rebalance in progress moves to (its epoch may already be
   * published while the move finishes); `undefined` when no move is under way.
   */
  pendingMove(): Promise<RingDocument | undefined>;
  close(): Promise<void>;
}

export interface PgRingStoreOptions {
  /** Connection string of the ring database. */
  readonly connectionString: string;
  /** Bound on connecting and on each statement; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Where idle-connection errors go; default: ignored (the next query reports them). */
  readonly onIdleError?: (err: Error) => void;
}

/** The ring in PostgreSQL (see the module comment for why). */
export class PgRingStore implements RingStore {
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  readonly #timeoutMs: number;

  constructor(options: PgRingStoreOptions) {
    this.#connectionString = options.connectionString;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    // Two connections are plenty: reads are one small row every few seconds.
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: this.#timeoutMs,
      statement_timeout: this.#timeoutMs,
      application_name: 'shardwrite-ring',
    });
    // An idle client's error (the server went away) must not crash the process.
    this.#pool.on('error', (err) => options.onIdleError?.(err));
  }

  /**
   * Creates or upgrades the ring schema. Safe to call from every process at
   * once: each migration runs in a transaction under `RING_LOCK_KEY` and is
   * recorded in `ring_schema_migrations`, so it is applied exactly once.
   */
  async migrate(): Promise<void> {
    await this.#transaction((client) => applyPending(client, RING_SCHEMA, RING_MIGRATIONS));
  }

  async current(): Promise<RingDocument | undefined> {
    try {
      return await this.#read(this.#pool);
    } catch (err) {
      // undefined_table: nobody has created the ring yet (e.g. `ring show` before the first start).
      if ((err as { code?: unknown }).code === '42P01') return undefined;
      throw err;
    }
  }

  async initIfEmpty(doc: RingDocument): Promise<RingDocument> {
    const first = validateRingDocument(doc);
    return this.#transaction(async (client) => {
      // Read first: a process whose role may not write the ring (routers, shards) still gets it.
      const existing = await this.#read(client);
      if (existing) return existing;
      const inserted = await client.query(
        `INSERT INTO ring_epochs (epoch, shards)
         SELECT $1, $2::jsonb WHERE NOT EXISTS (SELECT 1 FROM ring_epochs)`,
        [first.epoch, JSON.stringify(first.shards)],
      );
      if (inserted.rowCount === 1) await client.query('SELECT pg_notify($1, $2)', [RING_CHANNEL, String(first.epoch)]);
      const current = await this.#read(client);
      if (!current) throw new Error('the ring is empty right after initialising it');
      return current;
    });
  }

  async publish(next: RingDocument, expectedEpoch: number): Promise<RingDocument> {
    const doc = validateRingDocument(next);
    if (doc.epoch !== expectedEpoch + 1) {
      throw new RangeError(`a ring based on epoch ${expectedEpoch} must have epoch ${expectedEpoch + 1} (got ${doc.epoch})`);
    }
    return this.#transaction(async (client) => {
      const max = await client.query<{ epoch: string | null }>('SELECT max(epoch)::text AS epoch FROM ring_epochs');
      const current = max.rows[0]?.epoch == null ? 0 : toSafeInteger(max.rows[0].epoch, 'ring epoch');
      if (current !== expectedEpoch) throw new RingConflictError(expectedEpoch, current);
      await client.query('INSERT INTO ring_epochs (epoch, shards) VALUES ($1, $2::jsonb)', [doc.epoch, JSON.stringify(doc.shards)]);
      // Delivered at commit, and only if the transaction commits.
      await client.query('SELECT pg_notify($1, $2)', [RING_CHANNEL, String(doc.epoch)]);
      return doc;
    });
  }

  listen(onEpoch: (epoch: number) => void, onLost: (err: Error) => void): Promise<RingSubscription> {
    return listen({
      connectionString: this.#connectionString,
      connectionTimeoutMillis: this.#timeoutMs,
      channel: RING_CHANNEL,
      applicationName: 'shardwrite-ring-listener',
      onPayload: (payload) => {
        const epoch = Number(payload);
        // A payload we cannot read still means "something changed": report epoch 0 so the caller re-reads.
        onEpoch(Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0);
      },
      onLost,
    });
  }

  async pendingMove(): Promise<RingDocument | undefined> {
    let result: pg.QueryResult<{ epoch: string; shards: unknown }>;
    try {
      result = await this.#pool.query('SELECT target_epoch::text AS epoch, target_shards AS shards FROM ring_moves WHERE finished_at IS NULL');
    } catch (err) {
      // undefined_table: a ring database no rebalancer-aware process has migrated yet.
      if ((err as { code?: unknown }).code === '42P01') return undefined;
      throw err;
    }
    const row = result.rows[0];
    if (!row) return undefined;
    return validateRingDocument({ epoch: toSafeInteger(row.epoch, 'ring_moves.target_epoch'), shards: row.shards });
  }

  /**
   * Records where shard `shardId` keeps its events (its DATABASE_URL without
   * the password: the ring database holds no secret) and the id of that
   * store, so a rebalance can reach it with its own credentials and check it
   * is the right one. Called by every shard at start-up. The same store may move to
   * another URL (the latest registration's URL wins); another store may never
   * take the shard id's place.
   *
   * @throws StoreIdentityError when `shardId` is registered with another store.
   */
  async registerStore(shardId: string, databaseUrl: string, storeId: string): Promise<void> {
    const r = await this.#pool.query<{ store_id: string | null }>(
      `INSERT INTO shard_stores (shard_id, database_url, store_id) VALUES ($1, $2, $3::uuid)
       ON CONFLICT (shard_id) DO UPDATE SET database_url = excluded.database_url, store_id = excluded.store_id, registered_at = now()
         WHERE shard_stores.store_id IS NULL OR shard_stores.store_id = excluded.store_id
       RETURNING store_id::text`,
      [shardId, withoutPassword(databaseUrl), storeId],
    );
    if (r.rows.length > 0) return;
    const held = await this.stores();
    const other = held.get(shardId);
    throw new StoreIdentityError(
      `${shardId} is registered with event store ${other?.storeId ?? '?'}${other ? ` (at ${redactDatabaseUrl(other.databaseUrl)})` : ''}, ` +
        `not with store ${storeId} (at ${redactDatabaseUrl(databaseUrl)}): refusing a second store for one shard id; ` +
        `start ${shardId} on its own store, or give this store's shard another id`,
    );
  }

  /**
   * Binds `shardId` to another store (`shardwrite ring rebind`, for a store
   * that is lost): its registration switches to `storeId` at `databaseUrl`
   * (without the password) only while it still names `fromStoreId`.
   *
   * @returns false, changing nothing, when the registration names another store by now (or is gone).
   */
  async rebindStore(shardId: string, databaseUrl: string, fromStoreId: string | undefined, storeId: string): Promise<boolean> {
    const r = await this.#pool.query(
      `UPDATE shard_stores SET database_url = $2, store_id = $4::uuid, registered_at = now()
       WHERE shard_id = $1 AND store_id IS NOT DISTINCT FROM $3::uuid`,
      [shardId, withoutPassword(databaseUrl), fromStoreId ?? null, storeId],
    );
    return r.rowCount === 1;
  }

  /** Every registered shard store: shard id → database URL (never with a password) and store id (undefined for a registration older than store ids). */
  async stores(): Promise<Map<string, RegisteredStore>> {
    const result = await this.#pool.query<{ shard_id: string; database_url: string; store_id: string | null }>('SELECT shard_id, database_url, store_id::text FROM shard_stores');
    return new Map(result.rows.map((r) => [r.shard_id, { databaseUrl: r.database_url, storeId: r.store_id ?? undefined }]));
  }

  /**
   * The last address of every shard that was ever on the ring (a subscription
   * still reads a shard that left, for the events it committed).
   */
  async shardAddresses(): Promise<Map<string, string>> {
    const result = await this.#pool.query<{ id: string; address: string }>(`SELECT s->>'id' AS id, s->>'address' AS address FROM ring_epochs, jsonb_array_elements(shards) s ORDER BY epoch`);
    return new Map(result.rows.map((r) => [r.id, r.address]));
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #read(db: pg.Pool | pg.PoolClient): Promise<RingDocument | undefined> {
    const result = await db.query<{ epoch: string; shards: unknown }>('SELECT epoch::text AS epoch, shards FROM ring_epochs ORDER BY epoch DESC LIMIT 1');
    const row = result.rows[0];
    if (!row) return undefined;
    return validateRingDocument({ epoch: toSafeInteger(row.epoch, 'ring epoch'), shards: row.shards });
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [RING_LOCK_KEY]);
      const value = await work(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      // Destroy rather than recycle a client whose rollback failed.
      client.release(broken);
    }
  }
}

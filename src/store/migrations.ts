/**
 * Versioned schema migrations of a shard's event store.
 */
import pg from 'pg';
import { toSafeInteger } from './pg-values.js';
import { applyPending, isCurrent, type MigratedSchema, type Migration } from './schema-migrations.js';
import { CREATE_ROLES_SQL, REBALANCER_ROLE, ROUTER_ROLE, SHARD_ROLE, grantConnectSql } from './roles.js';

export type { Migration };

/**
 * Key of the transaction-scoped advisory lock every migration transaction
 * takes first, so processes starting together apply migrations one at a time.
 * ('shrw' as a 32-bit integer.)
 */
export const MIGRATION_LOCK_KEY = 0x73687277;

const EVENT_STORE: MigratedSchema = { label: 'event store', table: 'schema_migrations', lockKey: MIGRATION_LOCK_KEY };

/** The event store schema, oldest first. Never edit an applied migration: add one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event store',
    sql: `
      CREATE TABLE streams (
        stream_id      text   PRIMARY KEY,
        aggregate_type text   NOT NULL,
        aggregate_id   text   NOT NULL,
        version        bigint NOT NULL,
        -- set when the stream was moved to another shard: appends here are refused (I6)
        moved_at_epoch bigint NULL
      );

      CREATE TABLE events (
        position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        stream_id      text        NOT NULL,
        version        bigint      NOT NULL,
        type           text        NOT NULL,
        schema_version int         NOT NULL,
        data           jsonb       NOT NULL,
        metadata       jsonb       NOT NULL,
        recorded_at    timestamptz NOT NULL DEFAULT now(),
        -- the final arbiter of optimistic concurrency (I2)
        UNIQUE (stream_id, version)
      );

      CREATE TABLE command_results (
        stream_id     text   NOT NULL,
        command_id    text   NOT NULL,
        first_version bigint NOT NULL,
        last_version  bigint NOT NULL,
        PRIMARY KEY (stream_id, command_id)
      );

      -- the minimum ring epoch a writer must hold; bumped by the ring / rebalancing code
      CREATE TABLE shard_fence (
        id    boolean PRIMARY KEY DEFAULT true CHECK (id),
        epoch bigint  NOT NULL
      );
      INSERT INTO shard_fence (id, epoch) VALUES (true, 0);

      CREATE TABLE snapshots (
        stream_id      text        PRIMARY KEY,
        aggregate_type text        NOT NULL,
        version        bigint      NOT NULL,
        schema_version int         NOT NULL,
        state          jsonb       NOT NULL,
        taken_at       timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'snapshot state keeps its JSON text',
    // jsonb reorders object keys; a state decoded from it could iterate its
    // records in another order than the replayed state did (invariant I8).
    sql: `ALTER TABLE snapshots ALTER COLUMN state TYPE json USING state::json;`,
  },
  {
    version: 3,
    name: 'move fence',
    // Set by a rebalance when it seals this shard's moving streams: while the
    // ring is below this epoch, the writer appends only to streams that stay
    // here under the move's target ring (see append-batch-sql.ts).
    sql: `ALTER TABLE shard_fence ADD COLUMN moving_epoch bigint NULL;`,
  },
  {
    version: 4,
    name: 'event feed',
    // Subscriptions follow (tx, position) and pass only transactions below the
    // oldest one still running (pg_snapshot_xmin), so an event whose batch
    // commits late can never land behind a position a reader passed (I11).
    // event_id names an event wherever a rebalance copies it; a copy keeps the
    // shard, transaction and position where it was first committed (origin_*),
    // which is where subscriptions deliver it from (I12). Old copies a
    // rebalance cleans up are kept in moved_events, so a subscriber that had
    // not read them yet still gets them from the shard that committed them.
    sql: `
      ALTER TABLE events
        ADD COLUMN tx              xid8   NOT NULL DEFAULT pg_current_xact_id(),
        ADD COLUMN event_id        uuid   NOT NULL DEFAULT gen_random_uuid(),
        ADD COLUMN origin_shard    text   NULL,
        ADD COLUMN origin_tx       xid8   NULL,
        ADD COLUMN origin_position bigint NULL;
      CREATE INDEX events_feed ON events (tx, position);
      CREATE INDEX events_copies ON events (origin_shard, origin_tx, origin_position) WHERE origin_shard IS NOT NULL;

      CREATE TABLE moved_events (
        position        bigint      PRIMARY KEY,
        stream_id       text        NOT NULL,
        version         bigint      NOT NULL,
        type            text        NOT NULL,
        schema_version  int         NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        recorded_at     timestamptz NOT NULL,
        tx              xid8        NOT NULL,
        event_id        uuid        NOT NULL,
        origin_shard    text        NULL,
        origin_tx       xid8        NULL,
        origin_position bigint      NULL
      );
      CREATE INDEX moved_events_feed ON moved_events (tx, position);
    `,
  },
  {
    version: 5,
    name: 'append-only events',
    // Events are never updated, and deleted only by a rebalance's cleanup,
    // which says so in its own transaction (REBALANCE_SETTING). A guard
    // against bugs and slips, not against a hostile superuser: the
    // least-privilege roles of the security work enforce the same by grants.
    sql: `
      CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' AND current_setting('shardwrite.rebalance', true) = 'on' THEN
            RETURN NULL;
          END IF;
          RAISE EXCEPTION 'events are append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
        END
      $$;
      CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
      CREATE TRIGGER moved_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON moved_events
        FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    `,
  },
  {
    version: 6,
    name: 'store identity',
    // Which store this is (a uuid made once, with the store) and which shard
    // id claimed it on its first start (store-identity.ts): a process started
    // with another SHARD_ID, or a ring that names this store for another
    // shard, is refused instead of serving or moving data that is not its
    // own. Neither value ever changes once set; the row is never deleted.
    sql: `
      CREATE TABLE store_identity (
        id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
        store_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
        shard_id   text        NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        claimed_at timestamptz NULL
      );
      INSERT INTO store_identity DEFAULT VALUES;
      CREATE FUNCTION store_identity_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            IF NEW.store_id = OLD.store_id AND OLD.shard_id IS NULL THEN
              RETURN NEW;
            END IF;
          END IF;
          RAISE EXCEPTION 'a store''s identity is written once: % on store_identity is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END
      $$;
      CREATE TRIGGER store_identity_fixed BEFORE UPDATE OR DELETE ON store_identity
        FOR EACH ROW EXECUTE FUNCTION store_identity_fixed();
      CREATE TRIGGER store_identity_kept BEFORE TRUNCATE ON store_identity
        FOR EACH STATEMENT EXECUTE FUNCTION store_identity_fixed();
    `,
  },
  {
    version: 7,
    name: 'tenants and request digests',
    // A stream belongs to the tenant whose command created it ('' = no tenant);
    // it never changes, and a rebalance copies it with the stream. Every event
    // records who caused it and in which correlation (I14) in its metadata
    // (`metadata->>'principal'`, 'tenant', 'correlation_id', 'causation_id'),
    // which the append and a rebalance's copy write as one value. (Not as
    // generated columns beside it: four STORED generated columns cost the
    // streaming path 37% more CPU per command, `npm run bench -- e2e`.) A
    // command result keeps a digest of its request, so a command id reused for
    // another request is refused instead of answered with the first one's result.
    sql: `
      ALTER TABLE streams ADD COLUMN tenant text NOT NULL DEFAULT '';
      ALTER TABLE command_results ADD COLUMN request_digest text NULL;
    `,
  },
  {
    version: 8,
    name: 'least-privilege roles',
    // NOLOGIN group roles (cluster-wide, created once; deployments create LOGIN
    // users IN ROLE them). The shard appends: it may INSERT events but never
    // UPDATE or DELETE them, whatever the triggers of migration 5 would allow;
    // the rebalancer copies, archives and cleans up; routers never touch an
    // event store. A later migration that adds a table grants on it here too.
    sql: `
      ${CREATE_ROLES_SQL}
      ${grantConnectSql([SHARD_ROLE, REBALANCER_ROLE])}
      REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${SHARD_ROLE}, ${REBALANCER_ROLE}, ${ROUTER_ROLE};
      GRANT USAGE ON SCHEMA public TO ${SHARD_ROLE}, ${REBALANCER_ROLE};
      GRANT SELECT ON schema_migrations TO ${SHARD_ROLE}, ${REBALANCER_ROLE};

      GRANT SELECT, INSERT ON events, command_results TO ${SHARD_ROLE};
      GRANT SELECT, INSERT, UPDATE (version) ON streams TO ${SHARD_ROLE};
      GRANT SELECT, INSERT, UPDATE ON snapshots TO ${SHARD_ROLE};
      GRANT SELECT, UPDATE (epoch) ON shard_fence TO ${SHARD_ROLE};
      GRANT SELECT ON moved_events TO ${SHARD_ROLE};
      GRANT SELECT, UPDATE (shard_id, claimed_at) ON store_identity TO ${SHARD_ROLE};
      GRANT SELECT ON store_identity TO ${REBALANCER_ROLE};

      GRANT SELECT, INSERT, DELETE ON events, command_results TO ${REBALANCER_ROLE};
      GRANT SELECT, INSERT ON moved_events TO ${REBALANCER_ROLE};
      GRANT SELECT, INSERT, UPDATE, DELETE ON streams, snapshots TO ${REBALANCER_ROLE};
      GRANT SELECT, UPDATE ON shard_fence TO ${REBALANCER_ROLE};
    `,
  },
  {
    version: 9,
    name: 'no personal data in snapshots',
    // Crypto-shredding (src/privacy/): order-header's state schema 3 holds no personal data;
    // its older snapshots held the customer's e-mail and address in plaintext, out of reach of
    // an erasure. They are only caches (I8), skipped by loads since schema 3 anyway: delete them.
    sql: `DELETE FROM snapshots WHERE aggregate_type = 'order-header' AND schema_version < 3;`,
  },
];

/**
 * The transaction-local setting a rebalance's cleanup sets to delete events
 * it has archived (`SELECT set_config(REBALANCE_SETTING, 'on', true)`).
 */
export const REBALANCE_SETTING = 'shardwrite.rebalance';

/** Anything with node-postgres' `query` (a Pool, a Client, a PoolClient). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Brings the database up to the latest schema and returns the versions it
 * applied (empty when it was already current).
 *
 * Guarantees: each migration runs in its own transaction together with its
 * `schema_migrations` row, so it is applied completely or not at all; every
 * transaction first takes `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`, so any
 * number of processes may call this at once on the same database and each
 * migration is applied exactly once. Versions recorded in the database that
 * this code does not know (a newer release ran) are left alone.
 *
 * @param target a `pg.Pool` (one client is borrowed and released) or a
 *   connection string (a client is opened and closed).
 * @throws Error when a recorded migration's name differs from the code's
 *   (someone edited an applied migration), or the database error of a failed
 *   migration, whose transaction is rolled back.
 */
export async function migrate(target: pg.Pool | string, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  if (typeof target === 'string') {
    const client = new pg.Client({ connectionString: target });
    client.on('error', () => {}); // a failed query rejects; an idle error must not crash the process
    await client.connect();
    try {
      return await applyAll(client, ordered);
    } finally {
      await client.end();
    }
  }
  const client = await target.connect();
  let broken: unknown;
  try {
    return await applyAll(client, ordered);
  } catch (err) {
    broken = err;
    throw err;
  } finally {
    // Destroy rather than recycle a client whose last transaction failed mid-way.
    client.release(broken instanceof Error ? broken : undefined);
  }
}

async function applyAll(client: pg.ClientBase, migrations: readonly Migration[]): Promise<number[]> {
  const applied: number[] = [];
  // One transaction per migration: a failed one leaves those before it applied.
  for (const migration of migrations) {
    await client.query('BEGIN');
    try {
      applied.push(...(await applyPending(client, EVENT_STORE, [migration])));
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
  return applied;
}

/**
 * Raises the shard's fence to at least `epoch` (never lowers it) and returns
 * the fence's epoch afterwards. Waits for in-flight append batches (they hold
 * the fence row FOR SHARE); every batch that starts after this returns is
 * refused unless its writer holds an epoch >= the fence (invariant I6).
 *
 * @throws RangeError when `epoch` is not a non-negative safe integer; the
 *   database error when the update fails.
 */
export async function bumpFence(db: Queryable, epoch: number): Promise<number> {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`epoch ${epoch} is not a non-negative safe integer`);
  const result = await db.query<{ epoch: string }>('UPDATE shard_fence SET epoch = greatest(epoch, $1::bigint) WHERE id RETURNING epoch::text AS epoch', [epoch]);
  const row = result.rows[0];
  if (row === undefined) throw new Error('shard_fence has no row: run migrate() first');
  return toSafeInteger(row.epoch, 'shard_fence.epoch');
}

/** Whether every event-store migration this code knows is applied (read only; see {@link isCurrent}). */
export function storeSchemaIsCurrent(client: Queryable): Promise<boolean> {
  return isCurrent(client, EVENT_STORE, MIGRATIONS);
}

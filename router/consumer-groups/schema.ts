/**
 * The consumer groups' tables in the ring database, and their migrations.
 *
 * Kept apart from the ring's own schema (`src/ring/store.ts`): its own
 * migrations table and advisory lock, so the two evolve independently and
 * either may be applied first.
 */
import type pg from 'pg';
import { CREATE_ROLES_SQL, ROUTER_ROLE } from '../../src/store/roles.js';
import { applyPending, isCurrent, type MigratedSchema, type Migration } from '../../src/store/schema-migrations.js';

/**
 * Key of the transaction-scoped advisory lock the migrations run under, so
 * routers starting together take turns ('cgrp' as a 32-bit integer; the ring
 * uses 'ring', the event store 'shrw').
 */
export const GROUPS_LOCK_KEY = 0x63677270;

const GROUP_SCHEMA: MigratedSchema = { label: 'consumer group', table: 'consumer_group_schema_migrations', lockKey: GROUPS_LOCK_KEY };

/** Oldest first. Never edit an applied one: add one. */
const GROUP_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'consumer groups',
    sql: `
      -- A group and what its first join fixed: its partitions and filters.
      CREATE TABLE consumer_groups (
        name            text        PRIMARY KEY,
        partition_count int         NOT NULL CHECK (partition_count BETWEEN 1 AND 1024),
        aggregate_types text[]      NOT NULL,
        event_types     text[]      NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
      );
      -- Each partition's checkpoint (a cluster checkpoint token, '' = the beginning)
      -- and its lease: the member delivering it, until lease_expires_at.
      CREATE TABLE consumer_group_partitions (
        group_name       text        NOT NULL REFERENCES consumer_groups (name) ON DELETE CASCADE,
        partition        int         NOT NULL CHECK (partition >= 0),
        checkpoint       text        NOT NULL,
        checkpointed_at  timestamptz NOT NULL DEFAULT now(),
        owner            text        NULL,
        lease_expires_at timestamptz NULL,
        PRIMARY KEY (group_name, partition),
        CHECK ((owner IS NULL) = (lease_expires_at IS NULL))
      );
      -- Live members: a row expires unless its router renews it.
      CREATE TABLE consumer_group_members (
        group_name   text        NOT NULL REFERENCES consumer_groups (name) ON DELETE CASCADE,
        member_id    text        NOT NULL,
        member_name  text        NOT NULL,
        joined_at    timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        expires_at   timestamptz NOT NULL,
        PRIMARY KEY (group_name, member_id)
      );
    `,
  },
  {
    version: 2,
    name: 'router role',
    // Routers keep the groups' checkpoints, leases and members (the ring tables they only read;
    // see the ring's migration 4 for the roles).
    sql: `
      ${CREATE_ROLES_SQL}
      GRANT USAGE ON SCHEMA public TO ${ROUTER_ROLE};
      GRANT SELECT ON consumer_group_schema_migrations TO ${ROUTER_ROLE};
      GRANT SELECT, INSERT, UPDATE, DELETE ON consumer_groups, consumer_group_partitions, consumer_group_members TO ${ROUTER_ROLE};
    `,
  },
];

/**
 * Creates or upgrades the group tables. Safe to run from every router at
 * once: one transaction under `GROUPS_LOCK_KEY`, each migration recorded in
 * `consumer_group_schema_migrations` and applied exactly once.
 *
 * @throws when a recorded migration's name differs from the code's (a schema this code does not know).
 */
export async function migrateGroupSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await applyPending(client, GROUP_SCHEMA, GROUP_MIGRATIONS);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e));
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Whether every consumer-group migration this code knows is applied (read only; see {@link isCurrent}). */
export function groupSchemaIsCurrent(client: Pick<pg.ClientBase, 'query'>): Promise<boolean> {
  return isCurrent(client, GROUP_SCHEMA, GROUP_MIGRATIONS);
}

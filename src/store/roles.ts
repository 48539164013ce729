/**
 * The database group roles of least privilege, shared by the event stores
 * (src/store/migrations.ts), the ring database (src/ring/store.ts) and the
 * consumer groups' tables (router/consumer-groups/schema.ts). They are
 * NOLOGIN: a deployment creates LOGIN users IN ROLE them
 * (`CREATE ROLE shard_0 LOGIN PASSWORD … IN ROLE shardwrite_shard`).
 */

/** Shard processes: append events (never update or delete them), read the ring, register their store. */
export const SHARD_ROLE = 'shardwrite_shard';
/** The rebalancer: copies streams between stores, cleans up after a move, publishes ring epochs. */
export const REBALANCER_ROLE = 'shardwrite_rebalancer';
/** Routers: read the ring, keep consumer groups' checkpoints; no event store. */
export const ROUTER_ROLE = 'shardwrite_router';
/** The process-manager worker: its own two tables in the ring database (pm_timeouts, pm_instances), nothing else. */
export const PM_ROLE = 'shardwrite_pm';

/**
 * SQL that creates `roles` (NOLOGIN) when missing (roles belong to the server,
 * so another database may have made them already). A role that exists is left
 * alone without CREATE ROLE being tried, so an owner without CREATEROLE (a
 * managed PostgreSQL whose operator declares the roles) can migrate.
 */
export function createRolesSql(roles: readonly string[]): string {
  return `
  DO $$
  DECLARE r text;
  BEGIN
    FOREACH r IN ARRAY ARRAY[${roles.map((r) => `'${r}'`).join(', ')}] LOOP
      CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; -- made meanwhile, elsewhere
      END;
    END LOOP;
  END
  $$;`;
}

/** SQL that creates the shard's, the rebalancer's and the router's roles when missing. */
export const CREATE_ROLES_SQL = createRolesSql([SHARD_ROLE, REBALANCER_ROLE, ROUTER_ROLE]);

/** SQL that lets `roles` connect to the current database (also where PUBLIC's CONNECT was revoked). */
export function grantConnectSql(roles: readonly string[]): string {
  return `
  DO $$
  BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${roles.join(', ')}', current_database());
  END
  $$;`;
}

/**
 * Whether the login behind `db` may UPDATE or DELETE events — an owner or a
 * superuser, more than {@link SHARD_ROLE} grants. A shard says so at start-up:
 * such a login could rewrite history, which least privilege exists to rule out.
 */
export async function mayRewriteEvents(db: { query(sql: string): Promise<{ rows: { rewrite: boolean }[] }> }): Promise<boolean> {
  const { rows } = await db.query(`SELECT has_table_privilege('events', 'UPDATE') OR has_table_privilege('events', 'DELETE') AS rewrite`);
  return rows[0]?.rewrite === true;
}

/**
 * A shard's identity is bound to its event store. Every store gets a store id
 * (a uuid) when it is created (migration 6, `store_identity`), and the first
 * shard process that starts on it claims it with its `SHARD_ID`. From then on:
 *
 * - a process with another `SHARD_ID` refuses to start on the store
 *   ({@link claimStore});
 * - the ring database records each shard's store id when the shard registers,
 *   and refuses a second registration of the same shard id with another store
 *   (`PgRingStore.registerStore`);
 * - a rebalance checks that every store it is about to copy from or into is
 *   the one its shard claimed and registered, before it copies anything
 *   (src/rebalance).
 *
 * So two shards can never end up appending to one store, nor one shard id
 * name two stores, whatever a deployment's DATABASE_URL says.
 */
import pg from 'pg';
import type { Queryable } from './migrations.js';

/** What a store says about itself. */
export interface StoreIdentity {
  /** The uuid made with the store; never changes. */
  readonly storeId: string;
  /** The shard id that claimed it on its first start; `undefined` while no shard has started on it. */
  readonly shardId: string | undefined;
}

/** A store is claimed by another shard, or a registration names another store than the one a shard claimed. */
export class StoreIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreIdentityError';
  }
}

/**
 * Reads a store's identity; `undefined` when the store predates migration 6
 * (it has not been migrated by this release yet).
 */
export async function readStoreIdentity(db: Queryable): Promise<StoreIdentity | undefined> {
  try {
    const r = await db.query<{ store_id: string; shard_id: string | null }>('SELECT store_id::text, shard_id FROM store_identity WHERE id');
    const row = r.rows[0];
    if (!row) throw new Error('store_identity has no row (was the store migrated?)');
    return { storeId: row.store_id, shardId: row.shard_id ?? undefined };
  } catch (err) {
    // undefined_table: a store no process of this release has migrated.
    if ((err as { code?: unknown }).code === '42P01') return undefined;
    throw err;
  }
}

/**
 * Claims the (migrated) store — a pool, client or connection string — for `shardId` when no shard has claimed it yet,
 * and returns its identity. Idempotent for the shard that owns the store.
 *
 * @throws StoreIdentityError when another shard id claimed the store.
 */
export async function claimStore(target: Queryable | string, shardId: string): Promise<StoreIdentity> {
  if (typeof target === 'string') {
    const client = new pg.Client({ connectionString: target, application_name: 'shardwrite-shard' });
    client.on('error', () => {}); // a failed query rejects; an idle error must not crash the process
    await client.connect();
    try {
      return await claimStore(client, shardId);
    } finally {
      await client.end().catch(() => {});
    }
  }
  const db = target;
  // Under concurrent first starts one UPDATE wins; the other sees the winner's claim below.
  await db.query('UPDATE store_identity SET shard_id = $1, claimed_at = now() WHERE id AND shard_id IS NULL', [shardId]);
  const identity = await readStoreIdentity(db);
  if (!identity) throw new Error('store_identity is missing: run migrate() first');
  if (identity.shardId !== shardId) {
    throw new StoreIdentityError(
      `this event store (store id ${identity.storeId}) belongs to ${identity.shardId}; a process with SHARD_ID=${shardId} must not use it: ` + `point DATABASE_URL at ${shardId}'s own store`,
    );
  }
  return identity;
}

/**
 * The health-check service name under which a shard process reports SERVING
 * for exactly its shard id and store, so a rebalancer can tell that the
 * process at an address is that shard on that store (grpc.health.v1 answers
 * NOT_FOUND for any other name).
 */
export function identityHealthService(shardId: string, storeId: string): string {
  return `shardwrite.identity/${shardId}/${storeId}`;
}

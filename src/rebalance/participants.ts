/**
 * Who takes part in a move, and the checks made on their stores before
 * anything is copied, sealed or published: each store is registered, at the
 * move-fence schema, and is the store its shard claimed.
 */
import type * as grpc from '@grpc/grpc-js';
import type { PgRingStore, RegisteredStore, RingDocument } from '../ring/index.js';
import { redactDatabaseUrl, withCredentials, type StoreCredentials } from '../store/database-url.js';
import { StoreIdentityError, identityHealthService } from '../store/store-identity.js';
import { checkServing } from './health.js';
import type { MoveRecord } from './move-store.js';
import { RebalanceError, type MoveRequest } from './plan.js';
import { ShardDb } from './shard-db.js';

/** The event-store migration that added the move fence; every store taking part must have it. */
const MOVE_FENCE_SCHEMA = 3;

/** How the rebalancer reaches the participants' stores and processes (see `RebalancerOptions`). */
export interface RebalancerStoreOptions {
  readonly databaseUrls?: Readonly<Record<string, string>>;
  readonly storeCredentials?: StoreCredentials;
  readonly healthTimeoutMs: number;
  readonly credentials?: grpc.ChannelCredentials;
}

/** The shards a move touches: the new ring's, and a shard being removed. */
export function participantsOf(target: RingDocument, request: MoveRequest): string[] {
  const ids = target.shards.map((s) => s.id);
  if (request.kind === 'remove' && !ids.includes(request.shardId)) ids.push(request.shardId);
  return ids;
}

/** The ring a move starts from, as far as hashing goes: the target with the added shard left out or the removed one put back. */
export function baseRing(move: MoveRecord): RingDocument {
  if (move.kind === 'add') return { epoch: move.targetEpoch - 1, shards: move.target.shards.filter((s) => s.id !== move.shardId) };
  // Ownership hashes shard ids only; the removed shard's address is not needed (nor known after the switch).
  return { epoch: move.targetEpoch - 1, shards: [...move.target.shards, { id: move.shardId, address: 'removed.invalid:1' }] };
}

/** Opens every participant's store as registered (or as given); returns the registrations. */
export async function openStores(
  ringStore: PgRingStore,
  participants: readonly string[],
  dbs: Map<string, ShardDb>,
  given: Pick<RebalancerStoreOptions, 'databaseUrls' | 'storeCredentials'>,
): Promise<Map<string, RegisteredStore>> {
  const stores = await ringStore.stores();
  const missing = participants.filter((id) => !stores.has(id));
  if (missing.length > 0) {
    throw new RebalanceError(
      `no event store registered for ${missing.join(', ')}: a shard registers its DATABASE_URL when it starts with RING_DATABASE_URL set; ` +
        'start it (or pass --database-url for a shard being added)',
    );
  }
  // A URL given to this run keeps its credentials; a registered one gets the rebalancer's own.
  for (const id of participants) dbs.set(id, new ShardDb(id, given.databaseUrls?.[id] ?? withCredentials(stores.get(id)!.databaseUrl, given.storeCredentials)));
  return stores;
}

/**
 * Registers a store URL the operator gave for `shardId` (`--database-url`),
 * only once that store proves to be the one `shardId` claimed.
 */
export async function registerGiven(ringStore: PgRingStore, shardId: string, url: string): Promise<void> {
  const db = new ShardDb(shardId, url);
  try {
    let identity;
    try {
      identity = await db.identity();
    } catch (err) {
      throw new RebalanceError(`cannot reach the event store given for ${shardId} (${redactDatabaseUrl(url)}): ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!identity) throw new RebalanceError(`the event store given for ${shardId} (${redactDatabaseUrl(url)}) has no store identity: start ${shardId} on it with this release first`);
    if (identity.shardId !== shardId) {
      throw new RebalanceError(
        `the event store given for ${shardId} (${redactDatabaseUrl(url)}) is ${identity.shardId ? `${identity.shardId}'s` : 'claimed by no shard'} (store ${identity.storeId}), not ${shardId}'s: refusing to use it`,
      );
    }
    try {
      await ringStore.registerStore(shardId, url, identity.storeId);
    } catch (err) {
      if (err instanceof StoreIdentityError) throw new RebalanceError(err.message);
      throw err;
    }
  } finally {
    await db.close();
  }
}

/** Every store taking part has the move fence (its shard migrated it). */
export async function checkSchemas(dbs: ReadonlyMap<string, ShardDb>): Promise<void> {
  for (const db of dbs.values()) {
    let version: number;
    try {
      version = await db.schemaVersion();
    } catch (err) {
      throw new RebalanceError(`cannot reach ${db.shardId}'s event store: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (version < MOVE_FENCE_SCHEMA) {
      throw new RebalanceError(`${db.shardId}'s event store is at schema ${version}; start ${db.shardId} with this release first (it migrates its store)`);
    }
  }
}

/** A shard being added joins empty, and the process at its address is that shard serving that store. */
export async function checkNewShard(shardId: string, address: string, db: ShardDb, storeId: string, health: Pick<RebalancerStoreOptions, 'healthTimeoutMs' | 'credentials'>): Promise<void> {
  const live = await db.liveStreamCount();
  if (live > 0) throw new RebalanceError(`${shardId}'s event store already holds ${live} streams; a shard must join the ring empty`);
  const problem = await checkServing(address, health.healthTimeoutMs, '', health.credentials);
  if (problem) throw new RebalanceError(`${shardId} at ${address} is not serving (${problem}); start the shard process first`);
  // Serving is not enough: the process there must be this shard on the store the move copies into.
  const other = await checkServing(address, health.healthTimeoutMs, identityHealthService(shardId, storeId), health.credentials);
  if (other) {
    throw new RebalanceError(`the process at ${address} is not ${shardId} serving store ${storeId} (${other}); give the address where ${shardId} listens on its own store`);
  }
}

/**
 * Checks every participant's store is the one its shard claimed and the one
 * registered for it, and that no store serves two shards; returns each
 * shard's store id.
 *
 * @throws RebalanceError naming the first mismatch.
 */
export async function checkIdentities(dbs: ReadonlyMap<string, ShardDb>, stores: ReadonlyMap<string, RegisteredStore>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const byStore = new Map<string, string>();
  for (const db of dbs.values()) {
    const registered = stores.get(db.shardId)!;
    const where = redactDatabaseUrl(registered.databaseUrl);
    let identity;
    try {
      identity = await db.identity();
    } catch (err) {
      throw new RebalanceError(`cannot read ${db.shardId}'s store identity at ${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!identity) throw new RebalanceError(`${db.shardId}'s event store (${where}) has no store identity; start ${db.shardId} with this release first (it migrates its store)`);
    if (identity.shardId !== db.shardId) {
      throw new RebalanceError(
        `the event store registered for ${db.shardId} (${where}) is ${identity.shardId ? `${identity.shardId}'s` : 'claimed by no shard'} (store ${identity.storeId}): refusing to move streams through it`,
      );
    }
    if (registered.storeId !== identity.storeId) {
      throw new RebalanceError(
        registered.storeId === undefined
          ? `${db.shardId} registered its store before store ids existed; restart ${db.shardId} with this release so it registers store ${identity.storeId}`
          : `${db.shardId} is registered with store ${registered.storeId}, but ${where} is store ${identity.storeId}: refusing to move streams through it`,
      );
    }
    const twin = byStore.get(identity.storeId);
    if (twin) throw new RebalanceError(`${twin} and ${db.shardId} name the same event store (${identity.storeId}): refusing`);
    byStore.set(identity.storeId, db.shardId);
    ids.set(db.shardId, identity.storeId);
  }
  return ids;
}

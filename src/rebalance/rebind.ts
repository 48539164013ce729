/**
 * Binding a shard id to a new, empty event store when its store is lost
 * (`shardwrite ring rebind`; `Rebalancer.rebind` drives it under the
 * rebalancer lock). A shard id is bound to the store it first registered
 * (src/store/store-identity.ts), so a shard whose store is gone cannot start
 * on a new one: the ring database refuses the registration. Rebinding lifts
 * that binding once, and only when it cannot hide a live store:
 *
 * 1. `old store`: the store registered for the shard must be lost — its
 *    server does not answer, its database is gone, or another store answers
 *    at its address. A store that answers as itself is refused (it is not
 *    lost: start the shard on it), and so is one whose state cannot be told
 *    (say, its credentials are refused);
 * 2. `new store`: the store given is migrated when it is still blank, must
 *    hold no event and no stream, must be claimed by no other shard and be
 *    registered for none, and is then claimed for the shard;
 * 3. `ring`: the registration is switched from the old store id to the new
 *    one, only if it still names the old one (compare-and-set).
 *
 * The lost store's events are not recovered: the shard starts empty and
 * serves its aggregates from the new store (restore a backup into the new
 * store first to keep them — then it is not empty, and this refuses: restore
 * into the old store's place instead).
 */
import pg from 'pg';
import type { PgRingStore, RegisteredStore } from '../ring/store.js';
import { redactDatabaseUrl, withCredentials, type StoreCredentials } from '../store/database-url.js';
import { migrate } from '../store/migrations.js';
import { claimStore, readStoreIdentity } from '../store/store-identity.js';
import { RebalanceError } from './plan.js';

/** How long the old store gets to answer before it counts as unreachable. @default 5000 ms */
export const OLD_STORE_TIMEOUT_MS = 5000;

/** Socket errors that mean nothing answers at the old store's address. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNRESET']);
/** PostgreSQL: the database does not exist (the server answers, the store is gone). */
const NO_DATABASE = '3D000';

export interface RebindInput {
  readonly shardId: string;
  /** The new store, with the credentials to migrate and claim it (kept out of the ring database). */
  readonly databaseUrl: string;
  readonly ringStore: PgRingStore;
  /** The rebalancer's login, put into the old store's registered URL. */
  readonly storeCredentials?: StoreCredentials;
  readonly oldStoreTimeoutMs?: number;
}

/** What a rebind did. */
export interface RebindResult {
  readonly shardId: string;
  readonly oldStoreId: string | undefined;
  readonly oldUrl: string;
  /** Why the old store counts as lost. */
  readonly lostBecause: string;
  readonly newStoreId: string;
  readonly newUrl: string;
  /** Whether the new store had to be migrated first. */
  readonly migrated: boolean;
}

/**
 * Steps 1–3 above.
 *
 * @throws RebalanceError, changing nothing in the ring database, when the
 *   shard has no registration, the old store is not proven lost, or the new
 *   store is not empty, belongs to another shard, or cannot be reached.
 */
export async function rebindStore(input: RebindInput): Promise<RebindResult> {
  const { shardId, databaseUrl, ringStore } = input;
  const stores = await ringStore.stores();
  const old = stores.get(shardId);
  if (!old) throw new RebalanceError(`${shardId} has no registered event store: nothing to rebind (a shard registers its store when it first starts)`);
  const lostBecause = await oldStoreLost(shardId, old, withCredentials(old.databaseUrl, input.storeCredentials), input.oldStoreTimeoutMs ?? OLD_STORE_TIMEOUT_MS);
  const { storeId, migrated } = await claimEmptyStore(shardId, databaseUrl, stores);
  if (storeId === old.storeId) throw new RebalanceError(`${redactDatabaseUrl(databaseUrl)} is ${shardId}'s registered store ${storeId} itself: nothing to rebind`);
  const switched = await ringStore.rebindStore(shardId, databaseUrl, old.storeId, storeId);
  if (!switched) throw new RebalanceError(`${shardId}'s registration changed while it was being rebound; run the command again`);
  return { shardId, oldStoreId: old.storeId, oldUrl: old.databaseUrl, lostBecause, newStoreId: storeId, newUrl: databaseUrl, migrated };
}

/** Why the registered store counts as lost; throws RebalanceError when it does not. */
async function oldStoreLost(shardId: string, old: RegisteredStore, url: string, timeoutMs: number): Promise<string> {
  const where = redactDatabaseUrl(old.databaseUrl);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'shardwrite-rebind' });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    if (code === NO_DATABASE) return `its database at ${where} does not exist`;
    if ((typeof code === 'string' && UNREACHABLE.has(code)) || /timeout/i.test(message)) return `nothing answers at ${where} (${typeof code === 'string' ? code : message})`;
    throw new RebalanceError(
      `cannot tell whether ${shardId}'s store ${old.storeId ?? '?'} at ${where} is lost: its server answers, but ${message}; ` +
        'refusing to rebind a store that may be alive (fix the access, or make sure the store is gone)',
    );
  }
  try {
    let identity;
    try {
      identity = await readStoreIdentity(client);
    } catch (err) {
      throw new RebalanceError(`cannot tell whether ${shardId}'s store at ${where} is lost: reading its identity failed (${err instanceof Error ? err.message : String(err)})`);
    }
    if (old.storeId !== undefined && identity !== undefined && identity.storeId !== old.storeId) {
      return `another store (${identity.storeId}) answers at ${where}`;
    }
    if (old.storeId !== undefined && identity === undefined) return `a database without a store answers at ${where}`;
    throw new RebalanceError(
      `${shardId}'s store ${old.storeId ?? '(registered before store ids)'} at ${where} is reachable: it is not lost. ` + `Start ${shardId} on it; rebind only a store that is gone`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Migrates the new store when it is blank, checks it is empty and nobody else's, and claims it for `shardId`. */
async function claimEmptyStore(shardId: string, url: string, stores: ReadonlyMap<string, RegisteredStore>): Promise<{ storeId: string; migrated: boolean }> {
  const where = redactDatabaseUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000, application_name: 'shardwrite-rebind' });
  pool.on('error', () => {});
  try {
    let identity;
    let migrated = false;
    try {
      identity = await readStoreIdentity(pool);
      if (!identity) {
        migrated = (await migrate(pool)).length > 0;
        identity = await readStoreIdentity(pool);
      }
    } catch (err) {
      throw new RebalanceError(`cannot prepare the new store ${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!identity) throw new RebalanceError(`the new store ${where} has no store identity after its migrations`);
    if (identity.shardId !== undefined && identity.shardId !== shardId) {
      throw new RebalanceError(`the new store ${where} (store ${identity.storeId}) belongs to ${identity.shardId}: refusing to give it to ${shardId}`);
    }
    const holder = [...stores].find(([id, s]) => id !== shardId && s.storeId === identity.storeId)?.[0];
    if (holder) throw new RebalanceError(`the new store ${where} (store ${identity.storeId}) is registered for ${holder}: refusing to give it to ${shardId}`);
    const held = await pool.query<{ events: boolean; streams: boolean }>('SELECT EXISTS (SELECT 1 FROM events) AS events, EXISTS (SELECT 1 FROM streams) AS streams');
    if (held.rows[0]?.events || held.rows[0]?.streams) {
      throw new RebalanceError(`the new store ${where} holds ${held.rows[0]?.events ? 'events' : 'streams'}: a shard is rebound only to an empty store`);
    }
    await claimStore(pool, shardId);
    return { storeId: identity.storeId, migrated };
  } finally {
    await pool.end();
  }
}

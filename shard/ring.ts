/**
 * The shard's side of the ring: reads it from the ring database, decides
 * ownership by it, and when the epoch moves on, forgets cached aggregates and
 * raises this shard's store fence so an older process on the same database
 * (a paused or partitioned previous incarnation) can no longer append (I6).
 */
import { PgRingStore, RingOwnership, RingWatcher } from '../src/ring/index.js';
import type { Logger } from '../src/observability/logger.js';
import type { ShardConfig } from './config.js';

export interface ShardRing {
  readonly ownership: RingOwnership;
  readonly watcher: RingWatcher;
  /**
   * Starts acting on epochs: raises the fence to the current epoch now (before
   * the shard serves), and on every later change calls `onChange` and raises
   * the fence again.
   */
  follow(hooks: { onChange: () => void; fence: (epoch: number) => Promise<unknown> }): Promise<void>;
  close(): Promise<void>;
}

/** Delay between attempts at raising the fence while the event store is unreachable. */
const FENCE_RETRY_MS = 1000;

/**
 * Connects to the ring database, creates its schema if needed, writes
 * RING_BOOTSTRAP when there is no ring yet, and reads the current ring.
 * Registers the shard's store (`storeId`, claimed by this shard).
 *
 * @throws StoreIdentityError when the shard id is registered with another
 *   store; the database error when the ring database cannot be reached or
 *   migrated at start-up.
 */
export async function startShardRing(config: ShardConfig, storeId: string, logger: Logger): Promise<ShardRing> {
  const { ring } = config;
  if (!ring.databaseUrl) throw new Error('startShardRing needs RING_DATABASE_URL');
  const store = new PgRingStore({
    connectionString: ring.databaseUrl,
    onIdleError: (err) => logger.warn({ err }, 'idle ring database connection failed'),
  });
  const watcher = new RingWatcher(store, { pollMs: ring.pollMs, notify: ring.notify, logger });
  try {
    await store.migrate();
    // So a rebalance can reach this shard's events by its id alone; refused when the id is bound to another store.
    await store.registerStore(config.shardId, config.databaseUrl, storeId);
    if (ring.bootstrap) await store.initIfEmpty(ring.bootstrap);
    const view = await watcher.start();
    if (!view) logger.warn('the ring database has no ring yet: this shard owns nothing until one is published');
    else if (!view.shard(config.shardId)) logger.warn({ epoch: view.epoch, shardId: config.shardId }, 'this shard is not on the ring');
  } catch (err) {
    await watcher.close();
    await store.close();
    throw err;
  }

  let closed = false;
  let unsubscribe: (() => void) | undefined;
  let retry: NodeJS.Timeout | undefined;

  /** Raises the fence to the watcher's epoch, retrying until it lands or a newer epoch takes over. */
  const raise = async (fence: (epoch: number) => Promise<unknown>, epoch: number): Promise<void> => {
    try {
      await fence(epoch);
    } catch (err) {
      if (closed || watcher.epoch !== epoch) return;
      logger.error({ err, epoch }, 'cannot raise the store fence to the ring epoch; retrying');
      retry = setTimeout(() => void raise(fence, epoch), FENCE_RETRY_MS);
      retry.unref();
    }
  };

  return {
    ownership: new RingOwnership(config.shardId, watcher),
    watcher,
    async follow(hooks) {
      unsubscribe = watcher.onChange((view, previous) => {
        logger.info({ epoch: view.epoch, previousEpoch: previous?.epoch }, 'ring changed: dropping cached aggregates, raising the fence');
        hooks.onChange();
        void raise(hooks.fence, view.epoch);
      });
      // Before serving: whatever ran on this database before us under an older epoch is refused from now on.
      if (watcher.epoch > 0) await hooks.fence(watcher.epoch);
    },
    async close() {
      closed = true;
      unsubscribe?.();
      if (retry) clearTimeout(retry);
      await watcher.close();
      await store.close();
    },
  };
}

/**
 * Phase `fence`: every shard store's fence reaches the target epoch — the
 * shards raise it when they hear of the epoch; after `fenceWaitMs` the
 * stragglers' stores are raised here — so no process still acting on the old
 * ring can write anywhere (I6).
 *
 * In: the move and every participant's store. Out: every store fenced at the
 * target epoch.
 */
import { pause, type MoveRun } from '../move-run.js';
import type { ShardDb } from '../shard-db.js';

/** How often the fences are read while the shards raise them. */
const POLL_MS = 100;

export async function fence(run: Pick<MoveRun, 'move' | 'dbs' | 'options' | 'tally'>): Promise<void> {
  const epoch = run.move.targetEpoch;
  const until = performance.now() + run.options.fenceWaitMs;
  for (;;) {
    const lagging: ShardDb[] = [];
    for (const db of run.dbs.values()) if ((await db.fence()) < epoch) lagging.push(db);
    if (lagging.length === 0) return;
    if (performance.now() >= until) {
      // A shard that is down or deaf to notifications: fence its store for it.
      for (const db of lagging) await db.bumpFence(epoch);
      return;
    }
    run.tally.report(`waiting for ${lagging.map((db) => db.shardId).join(', ')} to hear epoch ${epoch}`);
    await pause(POLL_MS, run.options.signal);
  }
}

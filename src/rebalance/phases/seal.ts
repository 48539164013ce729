/**
 * Phase `seal`: seals every moving stream at once — each old owner's store
 * gets the move fence (`moving_epoch`), and from then on its writer appends
 * only to streams that stay (existing or new), in one statement per store.
 * The sealed window lasts until `publish`. It marks no stream (`cleanup`
 * marks `moved_at_epoch`).
 *
 * In: the move, its old owners, and how long ago its plan was recorded
 * (`planAgeMs`). Out: `streamsSealed`.
 */
import type { MoveCounts } from '../figures.js';
import { pause, type MoveRun } from '../move-run.js';

export async function seal(run: Pick<MoveRun, 'move' | 'sources' | 'options' | 'tally'>, planAgeMs: number): Promise<Pick<MoveCounts, 'streamsSealed'>> {
  const { move, options } = run;
  // The shards learn the plan by notification (or their next poll); a store sealed before its
  // shard knows the plan would refuse that shard's every append until it re-reads the ring.
  const notice = options.planNoticeMs - planAgeMs;
  if (notice > 0) {
    run.tally.report('giving every shard time to read the plan');
    await pause(notice, options.signal);
  }
  await Promise.all(run.sources.map((db) => db.setMoveFence(move.targetEpoch)));
  return { streamsSealed: run.tally.figures.streamsTotal };
}

/**
 * Phase `cleanup`: retires the old copies, a chunk at a time: marks them
 * `moved_at_epoch` at their old owners (so the store itself says they are
 * not served), then deletes each once its new owner is checked to hold it
 * completely — same version, same content.
 *
 * In: the run's stores and rings, and what this run knows of the moving
 * streams (`copies`; listed again after a resume). Out: `streamsCleaned`.
 * @throws RebalanceError, deleting nothing more, when a new owner does not
 *   hold a stream completely or its copy differs in content.
 */
import { listMoving, type Copies, type MovingStream } from '../copies.js';
import type { MoveCounts } from '../figures.js';
import { addTo } from '../group-by.js';
import type { MoveRun } from '../move-run.js';
import { RebalanceError } from '../plan.js';
import type { ShardDb } from '../shard-db.js';

type CleanupRun = Pick<MoveRun, 'move' | 'view' | 'base' | 'dbs' | 'sources' | 'options' | 'tally'>;

export async function cleanup(run: CleanupRun, copies: Copies): Promise<Pick<MoveCounts, 'streamsCleaned'>> {
  let cleaned = 0;
  await Promise.all(
    run.sources.map(async (db) => {
      const moving = copies.get(db)?.moving.values() ?? (await listMoving(run, db)).moving.values();
      const byOwner = new Map<string, MovingStream[]>();
      for (const row of moving) addTo(byOwner, row.owner, row);
      for (const [owner, rows] of byOwner) {
        for (let i = 0; i < rows.length; i += run.options.statementStreams) {
          run.options.signal?.throwIfAborted();
          cleaned += await retire(run, db, run.dbs.get(owner)!, rows.slice(i, i + run.options.statementStreams));
          run.tally.set({ streamsCleaned: cleaned });
          await run.tally.progress();
        }
      }
    }),
  );
  return { streamsCleaned: Math.max(cleaned, run.tally.figures.streamsCleaned) };
}

/** Marks `chunk` moved at `db`, checks `dst` holds each completely, and deletes the old copies; returns how many. */
async function retire(run: Pick<MoveRun, 'move'>, db: ShardDb, dst: ShardDb, chunk: readonly MovingStream[]): Promise<number> {
  const epoch = run.move.targetEpoch;
  const ids = chunk.map((r) => r.streamId);
  await db.seal(ids, epoch);
  const held = await dst.held(ids);
  const missing = chunk.filter((r) => {
    const h = held.get(r.streamId);
    return h === undefined || h.sealed || h.version < r.version;
  });
  if (missing.length > 0) {
    throw new RebalanceError(`refusing to delete the old copy of ${missing[0]!.streamId} on ${db.shardId}: ${dst.shardId} does not hold it completely (${missing.length} such streams)`);
  }
  // Same content, not only the same version: a copy damaged on its way never replaces its original.
  const upTo = new Map(chunk.map((r) => [r.streamId, r.version]));
  const [mine, theirs] = await Promise.all([db.digests(upTo), dst.digests(upTo)]);
  const differing = chunk.filter((r) => mine.get(r.streamId) !== theirs.get(r.streamId));
  if (differing.length > 0) {
    throw new RebalanceError(`refusing to delete the old copy of ${differing[0]!.streamId} on ${db.shardId}: its copy on ${dst.shardId} differs in content (${differing.length} such streams)`);
  }
  return db.deleteSealed(ids, epoch);
}

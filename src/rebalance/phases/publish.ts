/**
 * Phase `publish`: publishes the target ring (compare-and-set on the ring
 * store); routers and shards converge by NOTIFY. A shard being added must
 * answer health checks as itself, on its own store, first.
 *
 * In: the move, the participants' store ids, the ring store. Out: the ring
 * at the move's target epoch.
 * @throws RebalanceError when the ring moved meanwhile, someone else
 *   published the epoch, or the new shard is not serving.
 */
import type { PgRingStore, RingDocument } from '../../ring/index.js';
import { RingConflictError } from '../../ring/index.js';
import { identityHealthService } from '../../store/store-identity.js';
import { checkServing } from '../health.js';
import type { MoveRun } from '../move-run.js';
import { RebalanceError, commandOf } from '../plan.js';

export async function publish(run: Pick<MoveRun, 'move' | 'identities' | 'options'>, ringStore: PgRingStore): Promise<void> {
  const { move, options } = run;
  const current = await ringStore.current();
  if (current?.epoch === move.targetEpoch) {
    if (!sameRing(current, move.target)) throw new RebalanceError(`epoch ${move.targetEpoch} was published by someone else with other shards; this move cannot finish`);
    return;
  }
  if (current?.epoch !== move.targetEpoch - 1) {
    throw new RebalanceError(`the ring moved to epoch ${current?.epoch ?? 0} while this move to epoch ${move.targetEpoch} was in progress`);
  }
  if (move.kind === 'add') {
    const address = move.target.shards.find((s) => s.id === move.shardId)!.address;
    const problem = await checkServing(address, options.healthTimeoutMs, identityHealthService(move.shardId, run.identities.get(move.shardId)!), options.credentials);
    if (problem) {
      throw new RebalanceError(`${move.shardId} at ${address} is not serving (${problem}); start it, then run \`${commandOf(move)}\` again: the move resumes where it stopped`);
    }
  }
  try {
    await ringStore.publish(move.target, move.targetEpoch - 1);
  } catch (err) {
    if (err instanceof RingConflictError) throw new RebalanceError(`the ring moved to epoch ${err.currentEpoch} while this move was publishing`);
    throw err;
  }
}

function sameRing(a: RingDocument, b: RingDocument): boolean {
  return a.epoch === b.epoch && a.shards.length === b.shards.length && a.shards.every((s, i) => s.id === b.shards[i]!.id && s.address === b.shards[i]!.address);
}

/**
 * Undoing an unfinished move before its switch-over (`shardwrite ring abort`;
 * `Rebalancer.abort` drives it). Before `publish` nothing but the old owners
 * ever served a moving stream: the copies at the new owners were never
 * appended to, and the seal only stopped appends. So the old owners' streams
 * are the truth, and abandoning the move is:
 *
 * 1. `copies`: at every shard, each live stream it does not own under the old
 *    ring is a copy this move wrote; once its old owner is checked to hold the
 *    stream at least as far, the copy goes, through the cleanup's archive path
 *    (events to `moved_events`, with the rebalance setting);
 * 2. `seals`: the move fence is lifted from every store (and any stream
 *    sealed for the move's epoch is unsealed at its old owner), so the old
 *    owners append to their moving streams again;
 * 3. (in `PgMoveStore.abandon`) the old membership is published at the
 *    move's target epoch and the move is marked finished and aborted, in one
 *    transaction: routers and shards hear a new epoch with the old owners,
 *    forget the pending move, and the next move takes the epoch after.
 *
 * Each step is idempotent, so an abort stopped half-way is finished by
 * running it again.
 */
import { addTo } from './group-by.js';
import type { RingView } from '../ring/view.js';
import { RebalanceError } from './plan.js';
import type { ListedStream, ShardDb } from './shard-db.js';

/** What an abort did. */
export interface AbortFigures {
  /** Copies removed from the shards the move was copying to. */
  readonly copiesRemoved: number;
  /** Events of those copies moved to `moved_events`. */
  readonly eventsArchived: number;
  /** Stores whose move fence was lifted. */
  readonly fencesLifted: number;
  /** Streams unsealed at their old owners. */
  readonly streamsUnsealed: number;
}

export interface AbortInput {
  readonly targetEpoch: number;
  /** The ring before the move (hashing only), whose owners keep their streams. */
  readonly base: RingView;
  /** The ring the move was moving to. */
  readonly target: RingView;
  /** Every shard of the move, by id. */
  readonly dbs: ReadonlyMap<string, ShardDb>;
  /** Streams per statement. */
  readonly statementStreams: number;
  readonly signal?: AbortSignal;
}

/**
 * Removes the move's copies and lifts its seals (steps 1 and 2 above).
 *
 * @throws RebalanceError, touching nothing more, when a copy's old owner does
 *   not hold its stream at least as far as the copy, or a shard holds a live
 *   stream that neither ring gives it (not a copy this move can have made).
 */
export async function abandonCopies(input: AbortInput): Promise<AbortFigures> {
  const { base, target, dbs, targetEpoch } = input;
  const copies = new Map<ShardDb, Map<string, ListedStream[]>>();
  const sealed = new Map<ShardDb, string[]>();
  for (const db of dbs.values()) {
    const byOwner = new Map<string, ListedStream[]>();
    const mine: string[] = [];
    for await (const page of db.listStreams(targetEpoch)) {
      for (const row of page) {
        const owner = base.ownerOf(row.aggregateId).id;
        if (row.movedAtEpoch !== undefined) {
          if (owner === db.shardId) mine.push(row.streamId);
          continue;
        }
        if (owner === db.shardId) continue;
        if (target.ownerOf(row.aggregateId).id !== db.shardId) {
          throw new RebalanceError(
            `${db.shardId} holds ${row.streamId}, which ${owner} owns before the move and ${target.ownerOf(row.aggregateId).id} after it: ` + 'not a copy this move made; refusing to abort over it',
          );
        }
        addTo(byOwner, owner, row);
      }
    }
    copies.set(db, byOwner);
    sealed.set(db, mine);
  }

  let copiesRemoved = 0;
  let eventsArchived = 0;
  for (const [db, byOwner] of copies) {
    for (const [owner, rows] of byOwner) {
      const oldOwner = dbs.get(owner);
      if (!oldOwner) throw new RebalanceError(`${owner}, the old owner of ${rows[0]!.streamId}, does not take part in this move`);
      for (let i = 0; i < rows.length; i += input.statementStreams) {
        input.signal?.throwIfAborted();
        const chunk = rows.slice(i, i + input.statementStreams);
        const standing = await oldOwner.standing(chunk.map((r) => r.streamId));
        const short = chunk.filter((r) => {
          const s = standing.get(r.streamId);
          return s === undefined || (s.movedAtEpoch !== undefined && s.movedAtEpoch !== targetEpoch) || s.version < r.version;
        });
        if (short.length > 0) {
          const s = standing.get(short[0]!.streamId);
          throw new RebalanceError(
            `refusing to remove ${db.shardId}'s copy of ${short[0]!.streamId} (version ${short[0]!.version}): its old owner ${owner} ` +
              `${s === undefined ? 'does not hold it' : `holds it at version ${s.version}${s.movedAtEpoch !== undefined ? `, sealed at epoch ${s.movedAtEpoch}` : ''}`} ` +
              `(${short.length} such streams)`,
          );
        }
        const removed = await db.dropCopies(chunk.map((r) => r.streamId));
        copiesRemoved += removed.streams;
        eventsArchived += removed.events;
      }
    }
  }

  let fencesLifted = 0;
  let streamsUnsealed = 0;
  for (const db of dbs.values()) {
    const ids = sealed.get(db) ?? [];
    for (let i = 0; i < ids.length; i += input.statementStreams) streamsUnsealed += await db.unseal(ids.slice(i, i + input.statementStreams), targetEpoch);
    if (await db.liftMoveFence(targetEpoch)) fencesLifted++;
  }
  return { copiesRemoved, eventsArchived, fencesLifted, streamsUnsealed };
}

/**
 * Ownership by the ring: the shard side of routing. The pipeline asks it
 * before queueing a command; the group-commit writer stamps every batch with
 * its epoch, and the store's fence refuses batches from an older epoch (I6).
 */
import { WrongShardError } from '../errors.js';
import type { Ownership } from '../pipeline/ownership.js';
import type { Appender, AppendEntry, AppendResult, PendingMove } from '../store/types.js';
import type { RingWatcher } from './watcher.js';

/**
 * A shard owns an aggregate when the ring it holds maps the aggregate id to
 * the shard's own id. Without a ring (none written yet) it owns nothing, at
 * epoch 0.
 *
 * A command is checked when it is admitted, but appended later (after its
 * mailbox, its load, its decision), and the ring may move on in between. So
 * the writer is wrapped (`guard`): an entry is handed to the writer only if
 * the shard still owns its aggregate under the ring it holds at that moment,
 * and the writer stamps each batch with the oldest epoch any entry it holds
 * was checked under (`epoch()`). A batch therefore never claims an epoch
 * newer than one its entries were verified at, and once the store is fenced
 * above that epoch, the batch appends nothing.
 *
 * What else happens when the epoch changes (clearing caches, raising the
 * store's fence) is the composition root's business: it subscribes to the
 * watcher.
 */
export class RingOwnership implements Ownership {
  /** Entries handed to the writer and not yet settled, counted by the epoch they were checked at. */
  readonly #checked = new Map<number, number>();

  constructor(
    readonly shardId: string,
    private readonly watcher: RingWatcher,
  ) {}

  /**
   * The epoch the writer stamps its next batch with: the oldest epoch an entry
   * it holds was checked at, or the ring's epoch when it holds none.
   */
  epoch(): number {
    let epoch = this.watcher.epoch;
    for (const checkedAt of this.#checked.keys()) if (checkedAt < epoch) epoch = checkedAt;
    return epoch;
  }

  /**
   * Throws `WrongShardError` carrying the epoch this shard knows when the ring
   * gives `aggregateId` to another shard (or there is no ring yet). A refusal
   * also nudges a re-read, so a shard that missed a notification catches up
   * with the router that sent it the command.
   */
  assertOwner(aggregateId: string): void {
    const view = this.watcher.view;
    if (view !== undefined && view.ownerOf(aggregateId).id === this.shardId) return;
    this.watcher.nudge();
    throw new WrongShardError(view?.epoch ?? 0);
  }

  /** The store is fenced above our epoch: someone published a newer ring. Go and read it. */
  onFenced(storeEpoch: number): void {
    void this.watcher.refresh(storeEpoch);
  }

  awaitEpoch(epoch: number, timeoutMs: number): Promise<boolean> {
    return this.watcher.waitForEpoch(epoch, timeoutMs);
  }

  async refresh(): Promise<void> {
    await this.watcher.refresh();
  }

  /**
   * The rebalance under way as the writer needs it (see
   * `GroupCommitWriterOptions.pendingMove`): its target epoch, and whether
   * its target ring gives an aggregate to another shard than this one.
   * `undefined` when no move is under way or its ring is already held.
   */
  pendingMove(): PendingMove | undefined {
    const target = this.watcher.pending;
    if (target === undefined) return undefined;
    return { epoch: target.epoch, movesAway: (aggregateId) => target.ownerOf(aggregateId).id !== this.shardId };
  }

  /**
   * Wraps the shard's writer (the innermost appender, whose promise settles
   * only when the entry's batch is done) so that an entry reaches it only
   * while this shard owns the entry's aggregate, and counts under `epoch()`
   * until it settles. An entry whose aggregate the ring gave away since its
   * command was admitted is refused with `WrongShardError` and never written.
   */
  guard(writer: Appender): Appender {
    return {
      append: (entry: AppendEntry): Promise<AppendResult> => {
        const view = this.watcher.view;
        if (view === undefined || view.ownerOf(entry.aggregateId).id !== this.shardId) {
          const epoch = view?.epoch ?? 0;
          return Promise.reject(new WrongShardError(epoch, `this shard no longer owns the aggregate at epoch ${epoch}`));
        }
        const checkedAt = view.epoch;
        this.#checked.set(checkedAt, (this.#checked.get(checkedAt) ?? 0) + 1);
        const settled = () => {
          const left = (this.#checked.get(checkedAt) ?? 1) - 1;
          if (left === 0) this.#checked.delete(checkedAt);
          else this.#checked.set(checkedAt, left);
        };
        let pending: Promise<AppendResult>;
        try {
          pending = writer.append(entry);
        } catch (err) {
          settled();
          throw err;
        }
        return pending.finally(settled);
      },
      close: () => writer.close(),
    };
  }
}

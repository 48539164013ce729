import { WrongShardError } from '../errors.js';

/** Which aggregates this shard may append to, at which ring epoch. */
export interface Ownership {
  /** The ring epoch this shard acts under; the store's fence refuses older ones (I6). */
  epoch(): number;
  /** Throws `WrongShardError` unless this shard owns `aggregateId` at `epoch()`. */
  assertOwner(aggregateId: string): void;
  /** Called when the store refused this shard's epoch: re-read the ring. */
  onFenced(storeEpoch: number): void;
  /**
   * Waits up to `timeoutMs` until this shard holds ring `epoch` or newer and
   * resolves whether it does: a command refused because its stream is moving
   * can then be answered WRONG_SHARD (the router retries at the new owner)
   * instead of a retryable error. Absent: never waits.
   */
  awaitEpoch?(epoch: number, timeoutMs: number): Promise<boolean>;
  /** Re-reads the ring and the move in progress now (the store knows of a move this shard missed). */
  refresh?(): Promise<void>;
}

/** A shard that owns everything: a single-shard deployment. */
export const SOLE_OWNER: Ownership = {
  epoch: () => 0,
  assertOwner: () => {},
  onFenced: (storeEpoch) => {
    throw new WrongShardError(storeEpoch, 'the store was fenced at a newer epoch');
  },
};

import { WrongShardError } from '../errors.js';

/** Which aggregates this shard may append to, at which ring epoch. */
export interface Ownership {
  /** The ring epoch this shard acts under; the store's fence refuses older ones (I6). */
  epoch(): number;
  /** Throws `WrongShardError` unless this shard owns `aggregateId` at `epoch()`. */
  assertOwner(aggregateId: string): void;
  /** Called when the store refused this shard's epoch: re-read the ring. */
  onFenced(storeEpoch: number): void;
}

/** A shard that owns everything: a single-shard deployment. */
export const SOLE_OWNER: Ownership = {
  epoch: () => 0,
  assertOwner: () => {},
  onFenced: (storeEpoch) => {
    throw new WrongShardError(storeEpoch, 'the store was fenced at a newer epoch');
  },
};

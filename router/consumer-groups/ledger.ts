/**
 * The acknowledgement bookkeeping of one member session, without I/O: what
 * was delivered of each leased partition, what was acknowledged, and the
 * checkpoint to persist.
 *
 * Acks are cumulative per partition (the proto's contract): acknowledging a
 * delivery acknowledges every earlier delivery of the same partition, so the
 * checkpoint is the cursor recorded with the latest acknowledged delivery.
 * Cursors only move forward: each delivery records the per-shard maximum of
 * what the partition had already passed and the event's own cursor (see
 * `cursors.ts` for why that is valid).
 */
import { ValidationError } from '../../src/errors.js';
import { BEGINNING, hasPassed, laterOf } from './cursors.js';
import type { Cursor, ShardPosition } from '../../src/subscriptions/position.js';

interface Delivery {
  readonly seq: number;
  /** The partition's cursor right after this event. */
  readonly cursor: Cursor;
  /** When the event was recorded (ms since the epoch), for lag in seconds. */
  readonly recordedAtMs: number;
}

/** One leased partition's deliveries and acknowledgements. */
export class PartitionLedger {
  #pending: Delivery[] = [];
  #head = 0;
  #delivered: Cursor;
  #acked: Cursor;
  #dirty = false;

  /** @param checkpoint the partition's persisted checkpoint when its lease was taken. */
  constructor(
    readonly partition: number,
    checkpoint: Cursor = BEGINNING,
  ) {
    this.#delivered = checkpoint;
    this.#acked = checkpoint;
  }

  /** Deliveries not yet acknowledged. */
  get unacked(): number {
    return this.#pending.length - this.#head;
  }

  /** Everything up to here was delivered (or acknowledged before this lease). */
  get delivered(): Cursor {
    return this.#delivered;
  }

  /** The checkpoint: everything up to here was acknowledged. */
  get acked(): Cursor {
    return this.#acked;
  }

  /** True when the acknowledged checkpoint moved since `takeDirty` last reported it. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** When the oldest unacknowledged event was recorded, or `undefined` when none is pending. */
  get oldestUnackedAtMs(): number | undefined {
    return this.#pending[this.#head]?.recordedAtMs;
  }

  /** True when the event at `position` of `shard` was already delivered (a restarted subscription reads it again). */
  hasDelivered(shard: string, position: ShardPosition): boolean {
    return hasPassed(this.#delivered, shard, position);
  }

  /** Records a delivery; `seq` must grow from one delivery to the next in a session. */
  deliver(seq: number, eventCursor: Cursor, recordedAtMs: number): void {
    this.#delivered = laterOf(this.#delivered, eventCursor);
    this.#pending.push({ seq, cursor: this.#delivered, recordedAtMs });
  }

  /**
   * Acknowledges delivery `seq` and every earlier one. An ack of something
   * already acknowledged (or of a delivery from an earlier lease) changes nothing.
   *
   * @returns how many deliveries this acknowledged (0: the checkpoint did not move).
   */
  ack(seq: number): number {
    const before = this.#head;
    let last: Delivery | undefined;
    while (this.#head < this.#pending.length && this.#pending[this.#head]!.seq <= seq) last = this.#pending[this.#head++];
    const count = this.#head - before;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    if (!last) return 0;
    this.#acked = last.cursor;
    this.#dirty = true;
    return count;
  }

  /**
   * The subscription passed `cursor` with nothing of this partition left
   * unacknowledged: the checkpoint may move there (a quiet partition keeps
   * up, and its lag reads 0). Ignored while deliveries are pending.
   *
   * @returns true when the checkpoint moved.
   */
  passIdle(cursor: Cursor): boolean {
    if (this.unacked > 0) return false;
    const next = laterOf(this.#acked, cursor);
    if (next === this.#acked) return false;
    this.#delivered = laterOf(this.#delivered, next);
    this.#acked = next;
    this.#dirty = true;
    return true;
  }

  /** The checkpoint to persist, if it moved; clears the mark (call `markDirty` when persisting fails). */
  takeDirty(): Cursor | undefined {
    if (!this.#dirty) return undefined;
    this.#dirty = false;
    return this.#acked;
  }

  markDirty(): void {
    this.#dirty = true;
  }
}

/** `<partition>.<seq>`: the ack id of a delivery (opaque to members). */
export function formatAckId(partition: number, seq: number): string {
  return `${partition}.${seq}`;
}

const ACK_ID = /^(\d{1,5})\.(\d{1,15})$/;

/** @throws ValidationError when `ackId` is not one this service hands out. */
export function parseAckId(ackId: string): { partition: number; seq: number } {
  const m = ACK_ID.exec(ackId);
  if (!m) throw new ValidationError([{ field: 'ack.ack_ids', description: `unknown ack id "${ackId.slice(0, 40)}"` }]);
  return { partition: Number(m[1]), seq: Number(m[2]) };
}

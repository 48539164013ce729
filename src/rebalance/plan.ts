/**
 * What a rebalance must do, computed without I/O: the ring it moves to, what
 * to do with a request given the move already in progress, which streams
 * move and where, and how to cut their copy into bounded batches.
 */
import { RingDocumentError, validateRingDocument, validateShards, type RingDocument } from '../ring/document.js';
import type { RingView } from '../ring/view.js';

/** Adding a shard to the ring, or taking one out. */
export type MoveKind = 'add' | 'remove';

/**
 * The phases of a move, in order. Each one is idempotent and is recorded
 * only once complete, so a move interrupted anywhere is resumed by running
 * the phase it was in again.
 *
 * - `precopy`: copy every moving stream to its new owner while its old owner
 *   still serves it (nothing is paused), and check every copy;
 * - `seal`: set the move fence (`moving_epoch`) on each old owner's store, so
 *   its writer refuses appends to moving streams (existing or new); no stream
 *   row is marked;
 * - `delta`: copy what was appended between the pre-copy and the seal, and
 *   verify every moving stream is complete at its new owner;
 * - `publish`: publish the target ring (compare-and-set on the ring store);
 * - `fence`: every shard store's fence reaches the target epoch;
 * - `cleanup`: mark the old copies `moved_at_epoch` at their old owners, then
 *   delete each once its new owner is checked to hold it completely;
 * - `done`.
 *
 * Each phase is a module of its own under phases/, named after it.
 */
export const MOVE_PHASES = ['precopy', 'seal', 'delta', 'publish', 'fence', 'cleanup', 'done'] as const;
export type MovePhase = (typeof MOVE_PHASES)[number];

/** What the operator asked for. */
export type MoveRequest = { readonly kind: 'add'; readonly shardId: string; readonly address: string } | { readonly kind: 'remove'; readonly shardId: string };

/** The move recorded in the ring database, as far as planning needs it. */
export interface PlannedMove {
  readonly targetEpoch: number;
  readonly kind: MoveKind;
  readonly shardId: string;
  readonly target: RingDocument;
  readonly phase: MovePhase;
}

/** A request that cannot be carried out as asked; the message says why and what to do. */
export class RebalanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RebalanceError';
  }
}

/** Another move is in progress: finish it first (rerun its command). */
export class MoveInProgressError extends RebalanceError {
  constructor(readonly active: PlannedMove) {
    super(`a move is in progress: ${describeMove(active)} (to epoch ${active.targetEpoch}, phase ${active.phase}); ` + `rerun \`${commandOf(active)}\` to finish it before starting another`);
    this.name = 'MoveInProgressError';
  }
}

/** `ring add shard-3 (127.0.0.1:50064)`-style description of a move. */
export function describeMove(move: Pick<PlannedMove, 'kind' | 'shardId' | 'target'>): string {
  if (move.kind === 'remove') return `remove ${move.shardId}`;
  const address = move.target.shards.find((s) => s.id === move.shardId)?.address;
  return `add ${move.shardId}${address ? ` at ${address}` : ''}`;
}

/** The command that starts (and resumes) `move`. */
export function commandOf(move: Pick<PlannedMove, 'kind' | 'shardId' | 'target'>): string {
  if (move.kind === 'remove') return `shardwrite ring remove ${move.shardId}`;
  const address = move.target.shards.find((s) => s.id === move.shardId)?.address ?? '<host:port>';
  return `shardwrite ring add ${move.shardId} --address ${address}`;
}

/**
 * The ring `request` leads to from `current`: the next epoch, with the shard
 * appended (add) or left out (remove), the others in their order.
 *
 * @throws RebalanceError when the shard id or address is invalid or taken,
 *   the shard to remove is not on the ring, or it is the last one.
 */
export function targetRing(current: RingDocument, request: MoveRequest): RingDocument {
  const epoch = current.epoch + 1;
  try {
    if (request.kind === 'add') {
      if (current.shards.some((s) => s.id === request.shardId)) throw new RebalanceError(`${request.shardId} is already on the ring`);
      const clash = current.shards.find((s) => s.address === request.address);
      if (clash) throw new RebalanceError(`address ${request.address} belongs to ${clash.id} already`);
      return validateRingDocument({ epoch, shards: [...current.shards, { id: request.shardId, address: request.address }] });
    }
    if (!current.shards.some((s) => s.id === request.shardId)) throw new RebalanceError(`${request.shardId} is not on the ring`);
    const rest = current.shards.filter((s) => s.id !== request.shardId);
    if (rest.length === 0) throw new RebalanceError(`${request.shardId} is the only shard on the ring: there is nowhere to move its streams`);
    return validateRingDocument({ epoch, shards: rest });
  } catch (err) {
    if (err instanceof RingDocumentError) throw new RebalanceError(err.message);
    throw err;
  }
}

/** What to do with a request. */
export type MoveDecision =
  /** Nothing: the ring already is what the request asks for. */
  | { readonly action: 'done'; readonly epoch: number }
  /** Start a new move to this ring. */
  | { readonly action: 'start'; readonly target: RingDocument }
  /** Carry on with the move in progress (it is this very request). */
  | { readonly action: 'resume'; readonly move: PlannedMove };

/**
 * Decides what `request` means given the current ring and the move in
 * progress, if any: the same request resumes it, a different one is refused,
 * and a request the ring already satisfies changes nothing.
 *
 * @throws MoveInProgressError when another move is in progress;
 *   RebalanceError when the request contradicts the ring (a shard id already
 *   on the ring at another address, removing the last shard, …).
 */
export function decide(current: RingDocument, active: PlannedMove | undefined, request: MoveRequest): MoveDecision {
  try {
    validateShards([{ id: request.shardId, address: request.kind === 'add' ? request.address : '127.0.0.1:1' }]);
  } catch (err) {
    if (err instanceof RingDocumentError) throw new RebalanceError(err.message);
    throw err;
  }
  if (active) {
    if (active.kind !== request.kind || active.shardId !== request.shardId) throw new MoveInProgressError(active);
    if (request.kind === 'add') {
      const planned = active.target.shards.find((s) => s.id === request.shardId)?.address;
      if (planned !== request.address) {
        throw new RebalanceError(`the move in progress adds ${request.shardId} at ${planned}, not ${request.address}; rerun \`${commandOf(active)}\` to finish it`);
      }
    }
    return { action: 'resume', move: active };
  }
  const onRing = current.shards.find((s) => s.id === request.shardId);
  if (request.kind === 'add' && onRing) {
    if (onRing.address === request.address) return { action: 'done', epoch: current.epoch };
    throw new RebalanceError(`${request.shardId} is on the ring at ${onRing.address}, not ${request.address}`);
  }
  if (request.kind === 'remove' && !onRing) return { action: 'done', epoch: current.epoch };
  return { action: 'start', target: targetRing(current, request) };
}

/** A stream as the rebalancer lists it on a shard. */
export interface StreamRow {
  readonly streamId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
}

/**
 * The streams of shard `sourceId` whose owner under `target` is another
 * shard, grouped by that new owner. Streams it keeps are left out.
 */
export function movingStreams<T extends Pick<StreamRow, 'aggregateId'>>(sourceId: string, rows: Iterable<T>, target: RingView): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const owner = target.ownerOf(row.aggregateId).id;
    if (owner === sourceId) continue;
    let list = out.get(owner);
    if (!list) out.set(owner, (list = []));
    list.push(row);
  }
  return out;
}

/** One stream's share of a copy: the versions after `from` up to `to`. */
export interface CopyItem {
  readonly streamId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The version the new owner already holds (0 = none). */
  readonly from: number;
  /** The old owner's version to copy up to. */
  readonly to: number;
  /** The new owner holds a sealed copy left from an earlier move away from it: drop it first. */
  readonly purge: boolean;
}

/**
 * Cuts `items` (in order) into batches of at most `maxStreams` streams and
 * `maxEvents` events to copy. A stream with more than `maxEvents` events to
 * copy is split into consecutive version ranges, each a batch of its own, in
 * order (its new owner's streams row follows each range; it serves nothing
 * before the switch). Items with nothing to copy are skipped.
 *
 * @throws RangeError when a limit is not a positive integer.
 */
export function copyBatches(items: readonly CopyItem[], maxStreams: number, maxEvents: number): CopyItem[][] {
  if (!Number.isSafeInteger(maxStreams) || maxStreams < 1) throw new RangeError(`maxStreams must be a positive integer (got ${maxStreams})`);
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) throw new RangeError(`maxEvents must be a positive integer (got ${maxEvents})`);
  const batches: CopyItem[][] = [];
  let batch: CopyItem[] = [];
  let events = 0;
  const flush = () => {
    if (batch.length > 0) batches.push(batch);
    batch = [];
    events = 0;
  };
  for (const item of items) {
    const n = item.to - item.from;
    if (n <= 0 && !item.purge) continue;
    if (n > maxEvents) {
      flush();
      for (let from = item.from; from < item.to; from += maxEvents) {
        batches.push([{ ...item, from, to: Math.min(item.to, from + maxEvents), purge: item.purge && from === item.from }]);
      }
      continue;
    }
    if (batch.length >= maxStreams || events + n > maxEvents) flush();
    batch.push(item);
    events += n;
  }
  flush();
  return batches;
}

/**
 * What a moving stream needs at its new owner, given what the new owner holds
 * (`held`: its streams row, if any). `undefined` when it holds a live copy
 * ahead of the old owner, which no correct history allows.
 */
export function copyItem(source: StreamRow, held: { version: number; sealed: boolean } | undefined): CopyItem | undefined {
  if (held === undefined || held.sealed) {
    return { ...pick(source), from: 0, to: source.version, purge: held !== undefined };
  }
  if (held.version > source.version) return undefined;
  return { ...pick(source), from: held.version, to: source.version, purge: false };
}

function pick(row: StreamRow): Pick<CopyItem, 'streamId' | 'aggregateType' | 'aggregateId'> {
  return { streamId: row.streamId, aggregateType: row.aggregateType, aggregateId: row.aggregateId };
}

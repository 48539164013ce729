/**
 * Arithmetic on cluster cursors (the vectors inside checkpoint tokens, see
 * `src/subscriptions/position.ts`) that a consumer group needs to serve
 * several partitions from one subscription.
 *
 * A cursor means, per shard: every event of that shard up to this position
 * was delivered (a shard it does not name: nothing yet; `'done'`: all of it).
 * So the per-shard maximum of two cursors of one partition is again a valid
 * cursor of that partition, and the per-shard minimum over several
 * partitions is a place from which none of them misses anything.
 */
import { comparePositions, decodeCheckpoint, type Cursor, type ShardPosition } from '../../src/subscriptions/position.js';

/** The empty cursor: before everything (the token ""). */
export const BEGINNING: Cursor = new Map();

/** `""` is the beginning; otherwise a checkpoint token. @throws ValidationError when malformed. */
export function cursorOf(token: string): Cursor {
  return token === '' ? BEGINNING : decodeCheckpoint(token);
}

/** Per shard, the later of the two positions (`'done'` is later than any). Returns `a` itself when `b` adds nothing. */
export function laterOf(a: Cursor, b: Cursor): Cursor {
  let out: Map<string, ShardPosition | 'done'> | undefined;
  for (const [shard, q] of b) {
    const p = a.get(shard);
    if (p === 'done' || (p !== undefined && q !== 'done' && comparePositions(q, p) <= 0)) continue;
    (out ??= new Map(a)).set(shard, q);
  }
  return out ?? a;
}

/** Per shard, the earliest of the positions; a shard some cursor does not name is left out (= its beginning). */
export function earliestOf(cursors: readonly Cursor[]): Cursor {
  const [first, ...rest] = cursors;
  if (!first) return BEGINNING;
  const out = new Map(first);
  for (const c of rest) {
    for (const [shard, p] of out) {
      const q = c.get(shard);
      if (q === undefined) out.delete(shard);
      else if (p === 'done' || (q !== 'done' && comparePositions(q, p) < 0)) out.set(shard, q);
    }
  }
  return out;
}

/** True when every shard of `b` is at or before `a`'s position for it (`a` has seen all `b` has). */
export function covers(a: Cursor, b: Cursor): boolean {
  for (const [shard, q] of b) {
    const p = a.get(shard);
    if (p === undefined) return false;
    if (p === 'done') continue;
    if (q === 'done' || comparePositions(q, p) > 0) return false;
  }
  return true;
}

/** True when `cursor` is already past the event at `position` of `shard`. */
export function hasPassed(cursor: Cursor, shard: string, position: ShardPosition): boolean {
  const p = cursor.get(shard);
  if (p === undefined) return false;
  return p === 'done' || comparePositions(position, p) <= 0;
}

/**
 * Positions in a shard's feed and the checkpoint tokens built from them.
 *
 * A shard's feed follows its events in (transaction id, position) order and
 * only passes transactions below the oldest one still running, so nothing
 * that commits later can land behind a position already passed (I11). A
 * cluster-wide checkpoint is the vector of every shard's position.
 */
import { ValidationError } from '../errors.js';

/** A place in one shard's feed: after the event (tx, position); (0, 0) = before everything. */
export interface ShardPosition {
  readonly tx: bigint;
  readonly position: bigint;
}

export const START: ShardPosition = { tx: 0n, position: 0n };

const POSITION = /^(\d{1,20}):(\d{1,20})$/;

/** `"<tx>:<position>"`; "" is {@link START}. @throws ValidationError when malformed. */
export function parsePosition(text: string): ShardPosition {
  if (text === '') return START;
  const m = POSITION.exec(text);
  if (!m) throw invalid('from', `malformed shard position "${text.slice(0, 64)}"`);
  return { tx: BigInt(m[1]!), position: BigInt(m[2]!) };
}

export function formatPosition(p: ShardPosition): string {
  return p.tx === 0n && p.position === 0n ? '' : `${p.tx}:${p.position}`;
}

/** Negative when `a` comes before `b` in a shard's feed, 0 when equal, positive after. */
export function comparePositions(a: ShardPosition, b: ShardPosition): number {
  if (a.tx !== b.tx) return a.tx < b.tx ? -1 : 1;
  return a.position === b.position ? 0 : a.position < b.position ? -1 : 1;
}

/**
 * Where a cluster-wide subscription stands: a position per shard. `'done'`
 * marks a shard that left the ring and was read to its end. A shard the
 * vector does not name is read from its beginning.
 */
export type Cursor = ReadonlyMap<string, ShardPosition | 'done'>;

const TOKEN_VERSION = 1;

/** The opaque checkpoint token of a cursor (base64url of a small JSON document). */
export function encodeCheckpoint(cursor: Cursor): string {
  return checkpointToken(
    [...cursor.keys()].sort().map((id) => {
      const p = cursor.get(id)!;
      return [id, p === 'done' ? 'done' : formatPosition(p)] as const;
    }),
  );
}

/**
 * The token of a cursor given as `[shard id, formatted position or 'done']`,
 * sorted by shard id: for a caller that keeps positions formatted (one token
 * is made for every event delivered).
 */
export function checkpointToken(entries: readonly (readonly [string, string])[]): string {
  // Built by hand: shard ids are DNS labels and positions digits, nothing to escape.
  let json = `{"v":${TOKEN_VERSION},"s":{`;
  for (let i = 0; i < entries.length; i++) json += `${i === 0 ? '' : ','}"${entries[i]![0]}":"${entries[i]![1]}"`;
  return Buffer.from(json + '}}').toString('base64url');
}

/** @throws ValidationError when `token` is not a checkpoint this service made. */
export function decodeCheckpoint(token: string): Map<string, ShardPosition | 'done'> {
  let doc: unknown;
  try {
    if (token.length > 64 * 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw new Error('not base64url');
    doc = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid('from', 'malformed checkpoint token');
  }
  const d = doc as { v?: unknown; s?: unknown };
  if (typeof doc !== 'object' || doc === null || d.v !== TOKEN_VERSION || typeof d.s !== 'object' || d.s === null || Array.isArray(d.s)) {
    throw invalid('from', 'malformed checkpoint token');
  }
  const out = new Map<string, ShardPosition | 'done'>();
  for (const [id, p] of Object.entries(d.s as Record<string, unknown>)) {
    if (typeof p !== 'string') throw invalid('from', 'malformed checkpoint token');
    out.set(id, p === 'done' ? 'done' : parsePosition(p));
  }
  return out;
}

const invalid = (field: string, description: string) => new ValidationError([{ field, description }]);

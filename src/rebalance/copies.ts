/**
 * Copying moving streams to their new owners, shared by `precopy`, `delta`
 * and `cleanup`: what this run knows of each old owner's moving streams
 * (`Copies`), one copy pass, and the checks of what the new owners hold.
 */
import { addTo } from './group-by.js';
import type { MoveCounts } from './figures.js';
import { pause, type MoveRun } from './move-run.js';
import { RebalanceError, copyBatches, copyItem, type CopyItem } from './plan.js';
import type { CopyPayload, ListedStream, ShardDb } from './shard-db.js';

/** A moving stream, with its new owner and the version last seen at its old owner. */
export type MovingStream = ListedStream & { readonly owner: string };

/** What a new owner holds of a stream. */
export interface Held {
  readonly version: number;
  readonly sealed: boolean;
}

/** What this run knows of one old owner's moving streams (lost with the process; a resumed run lists again). */
export interface SourceState {
  /** Events up to this position were looked at: later changes are found by position (I9). */
  position: bigint;
  /** The moving streams, by id. */
  readonly moving: Map<string, MovingStream>;
  /** What each moving stream's new owner holds. */
  readonly held: Map<string, Held>;
  /** Streams on this shard before the move (for the moved share). */
  seen: number;
}

/** What this run knows, per old owner; filled by its first full pass. */
export type Copies = Map<ShardDb, SourceState>;

/** What a copy pass did: events copied, and the streams written to per old owner. */
export interface CopyPassResult {
  readonly events: number;
  readonly streams: Map<ShardDb, string[]>;
}

type CopyRun = Pick<MoveRun, 'move' | 'view' | 'base' | 'dbs' | 'sources' | 'options' | 'tally'>;

/**
 * One copy pass. `full` lists every old owner's streams and asks the new
 * owners what they hold; `changes` looks only at streams with events after
 * the last pass (by position). Either way each new owner gets what it
 * lacks.
 */
export async function copyPass(run: CopyRun, copies: Copies, mode: 'full' | 'changes'): Promise<CopyPassResult> {
  const work = await Promise.all(run.sources.map((src) => survey(run, copies, src, mode)));
  run.tally.set(countCopies(copies));
  await run.tally.progress(true);
  let events = 0;
  const written = new Map<ShardDb, string[]>();
  // Old owners in parallel; each one's batches one after another.
  await Promise.all(
    work.map(async ({ src, state, rows }) => {
      const ids: string[] = [];
      written.set(src, ids);
      events += await copyFrom(run, copies, src, state, rows, ids);
    }),
  );
  return { events, streams: written };
}

/** What of `src`'s moving streams a pass looks at: all of them (`full`), or those changed since the last pass. */
async function survey(run: CopyRun, copies: Copies, src: ShardDb, mode: 'full' | 'changes'): Promise<{ src: ShardDb; state: SourceState; rows: MovingStream[] }> {
  const known = copies.get(src);
  if (mode === 'full' || !known) {
    const position = await src.maxPosition();
    const { seen, moving } = await listMoving(run, src);
    const rows = [...moving.values()];
    const held = await heldBy(run, rows);
    const state: SourceState = { position, moving, held, seen };
    copies.set(src, state);
    return { src, state, rows };
  }
  const position = await src.maxPosition();
  const changed = await src.changedSince(known.position, run.move.targetEpoch);
  known.position = position;
  const rows: MovingStream[] = [];
  for (const row of changed) {
    const owner = run.view.ownerOf(row.aggregateId).id;
    if (owner === src.shardId) continue;
    const withOwner = { ...row, owner };
    known.moving.set(row.streamId, withOwner);
    rows.push(withOwner);
  }
  const unknown = rows.filter((r) => !known.held.has(r.streamId));
  for (const [id, h] of await heldBy(run, unknown)) known.held.set(id, h);
  return { src, state: known, rows };
}

/** Copies what each new owner lacks of `rows` from `src`, in bounded batches; returns the events copied. */
async function copyFrom(run: CopyRun, copies: Copies, src: ShardDb, state: SourceState, rows: readonly MovingStream[], ids: string[]): Promise<number> {
  const { options, tally } = run;
  const byOwner = new Map<string, CopyItem[]>();
  for (const row of rows) {
    const h = state.held.get(row.streamId);
    const item = copyItem(row, h);
    if (!item) {
      throw new RebalanceError(`${row.owner} already holds ${row.streamId} at version ${h!.version}, ahead of ${src.shardId}'s ${row.version}: refusing to move over it`);
    }
    if (item.to > item.from || item.purge) addTo(byOwner, row.owner, item);
  }
  let events = 0;
  for (const [owner, items] of byOwner) {
    const dst = run.dbs.get(owner)!;
    for (const batch of copyBatches(items, options.batchStreams, options.batchEvents)) {
      options.signal?.throwIfAborted();
      const t0 = performance.now();
      const payload = await src.read(batch);
      checkComplete(src.shardId, batch, payload);
      const inserted = await dst.write(batch, payload);
      for (const item of batch) {
        state.held.set(item.streamId, { version: item.to, sealed: false });
        ids.push(item.streamId);
      }
      events += inserted;
      tally.copied(batch.length, inserted, performance.now() - t0);
      tally.set(countCopies(copies));
      await tally.progress();
      if (options.pauseMs > 0) await pause(options.pauseMs, options.signal);
    }
  }
  return events;
}

/** The stream counts of what this run knows. */
export function countCopies(copies: Copies): Pick<MoveCounts, 'streamsSeen' | 'streamsTotal' | 'streamsCopied'> {
  let seen = 0;
  let total = 0;
  let copied = 0;
  for (const state of copies.values()) {
    seen += state.seen;
    total += state.moving.size;
    for (const row of state.moving.values()) if ((state.held.get(row.streamId)?.version ?? -1) >= row.version) copied++;
  }
  return { streamsSeen: seen, streamsTotal: total, streamsCopied: copied };
}

/** Whether every moving stream this run knows is at its old owner's version at its new owner. */
export function copiesComplete(copies: Copies): boolean {
  for (const state of copies.values()) {
    for (const row of state.moving.values()) {
      const h = state.held.get(row.streamId);
      if (!h || h.sealed || h.version !== row.version) return false;
    }
  }
  return true;
}

/**
 * Checks the new owners really hold what this run copied or found there:
 * the streams row at the old owner's version, events 1..n. `only` limits it
 * to some streams per old owner (undefined = every moving stream). Returns
 * the problems found.
 */
export async function verifyCopies(run: Pick<MoveRun, 'sources' | 'dbs'>, copies: Copies, only: Map<ShardDb, string[]> | undefined): Promise<string[]> {
  const problems: string[] = [];
  for (const src of run.sources) {
    const state = copies.get(src);
    if (!state) continue;
    const ids = only ? new Set(only.get(src) ?? []) : undefined;
    const byOwner = new Map<string, ListedStream[]>();
    for (const row of state.moving.values()) {
      if (ids && !ids.has(row.streamId)) continue;
      addTo(byOwner, row.owner, row);
    }
    for (const [owner, rows] of byOwner) {
      const held = await run.dbs.get(owner)!.held(
        rows.map((r) => r.streamId),
        true,
      );
      for (const r of rows) {
        const h = held.get(r.streamId);
        if (!h) problems.push(`${owner} lacks ${r.streamId}`);
        else if (h.sealed || h.version !== r.version || h.events !== h.version || h.maxVersion !== h.version) {
          problems.push(`${owner} holds ${r.streamId} at version ${h.version} with ${h.events} events; ${src.shardId} has ${r.version}`);
        }
        if (h) state.held.set(r.streamId, { version: h.version, sealed: h.sealed });
      }
    }
  }
  return problems;
}

/** What the new owners hold of `rows`, asked per new owner. */
async function heldBy(run: Pick<MoveRun, 'dbs'>, rows: readonly MovingStream[]): Promise<Map<string, Held>> {
  const out = new Map<string, Held>();
  const byOwner = new Map<string, string[]>();
  for (const r of rows) addTo(byOwner, r.owner, r.streamId);
  for (const [owner, ids] of byOwner) {
    for (const [id, h] of await run.dbs.get(owner)!.held(ids)) out.set(id, { version: h.version, sealed: h.sealed });
  }
  return out;
}

/** Every stream of `db` that the target ring gives to another shard, by id, with that shard. */
export async function listMoving(run: Pick<MoveRun, 'move' | 'view' | 'base'>, db: ShardDb): Promise<{ seen: number; moving: Map<string, MovingStream> }> {
  const moving = new Map<string, MovingStream>();
  let seen = 0;
  for await (const page of db.listStreams(run.move.targetEpoch)) {
    for (const row of page) {
      // Copies found here on their way in (a resumed removal) are not this shard's streams.
      if (run.base.ownerOf(row.aggregateId).id === db.shardId) seen++;
      const owner = run.view.ownerOf(row.aggregateId).id;
      if (owner !== db.shardId) moving.set(row.streamId, { ...row, owner });
    }
  }
  return { seen, moving };
}

/** Every stream of the batch must come with exactly its versions from+1..to. */
function checkComplete(shardId: string, batch: readonly CopyItem[], payload: CopyPayload): void {
  const next = new Map(batch.map((i) => [i.streamId, i.from + 1]));
  for (const e of payload.events) {
    const want = next.get(e.streamId);
    if (want !== e.version) throw new Error(`${shardId}: ${e.streamId} has version ${e.version} where ${want} was expected`);
    next.set(e.streamId, want + 1);
  }
  for (const item of batch) {
    if (next.get(item.streamId) !== item.to + 1) throw new Error(`${shardId}: ${item.streamId} lacks events up to version ${item.to}`);
  }
}

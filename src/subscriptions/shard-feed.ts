/**
 * One shard's feed for one subscriber: catch-up from the store, then the
 * shared live tail, with no gap and no overlap between the two (both follow
 * the same (transaction id, position) order, and the subscriber switches to
 * the tail only at a position the tail's buffer reaches back to).
 *
 * Copies a rebalance made into this store are not events here (they were
 * delivered by the shard that first committed them); each copy that passes
 * the filters becomes a barrier naming that shard and position, which the
 * router's merge honours so a moved stream's later events never overtake its
 * earlier ones (I12).
 */
import type { AnyDecider } from '../domain/decider.js';
import { upcast } from '../domain/upcast.js';
import type { FeedItem } from '../generated/shardwrite/internal/v1/FeedItem.js';
import type { FeedRow, PgFeedReader } from '../store/pg-feed-reader.js';
import { encodeEvent } from './event-codec.js';
import { eventMatches, filterKey, streamMatches, type FeedFilter } from './filter.js';
import type { LiveTail } from './live-tail.js';
import type { PersonalData } from '../privacy/personal-data.js';
import type { SubjectKey } from '../privacy/subject-keys.js';
import { comparePositions, formatPosition, type ShardPosition } from './position.js';

/** Rows read from the store per catch-up page. @default 2000 */
export const CATCH_UP_PAGE = 2000;

export interface ShardFeedDeps {
  readonly shardId: string;
  readonly reader: PgFeedReader;
  readonly tail: LiveTail;
  readonly deciders: ReadonlyMap<string, AnyDecider>;
  readonly parseStreamId: (streamId: string) => { aggregateType: string; aggregateId: string };
  /** Opens personal fields (crypto-shredding) as rows become messages. */
  readonly personalData?: PersonalData;
}

export type FeedStart = { readonly after: ShardPosition } | { readonly fromEnd: true };

/**
 * Yields the feed in batches (one per page or tail read): first `start`, then
 * events, barriers, progress (after rows the filter skipped), `caughtUp` when
 * the live tail is reached, `fellBehind` when the tail's buffer moved past a
 * slow subscriber. Pull-based: nothing is read ahead of the consumer. Ends
 * when `signal` aborts; a store error ends it with that error.
 */
export async function* followShard(deps: ShardFeedDeps, start: FeedStart, filter: FeedFilter, signal: AbortSignal): AsyncGenerator<FeedItem[]> {
  let cursor: ShardPosition;
  if ('fromEnd' in start) {
    cursor = await deps.reader.tail();
    const copied = await deps.reader.copiedUpTo(cursor);
    const copiedUpTo: Record<string, string> = {};
    for (const [shard, at] of copied) copiedUpTo[shard] = formatPosition(at);
    yield [{ start: { after: formatPosition(cursor), copiedUpTo } }];
  } else {
    cursor = start.after;
    yield [{ start: { after: formatPosition(cursor), copiedUpTo: {} } }];
  }
  const detach = deps.tail.attach();
  const key = filterKey(filter);
  try {
    let live = false;
    let caughtUp = false;
    while (!signal.aborted) {
      if (live) {
        // Subscribers with this filter at this place share the items (and their encoding, see the Follow service).
        const read = deps.tail.afterShared(cursor, CATCH_UP_PAGE, `${key}#${deps.personalData?.generation ?? 0}`, (rows) => itemsOf(deps, rows, filter));
        if (read === 'behind') {
          live = false;
          caughtUp = false;
          yield [{ fellBehind: true }];
          continue;
        }
        if (read === 'none') {
          // Caught up means nothing committed is left to pass, not only nothing passable yet.
          if (!caughtUp && !(await deps.reader.committedAfter(cursor))) {
            caughtUp = true;
            yield [{ caughtUp: true }];
            continue;
          }
          await deps.tail.wait(signal, caughtUp ? 1000 : 50);
          continue;
        }
        const items = await read.made;
        cursor = read.rows[read.rows.length - 1]!.at;
        yield items;
        continue;
      }
      const rows = await deps.reader.page(cursor, CATCH_UP_PAGE);
      const end = rows.length > 0 ? rows[rows.length - 1]!.at : cursor;
      if (rows.length < CATCH_UP_PAGE && deps.tail.covers(end)) live = true;
      else if (rows.length === 0) await deps.tail.wait(signal, 50); // the tail is starting
      if (rows.length === 0) continue;
      const items = await itemsOf(deps, rows, filter);
      cursor = end;
      yield items;
    }
  } finally {
    detach();
  }
}

/** The items of `rows`, opening personal fields only of the rows not encoded yet (or encoded before a key changed). */
async function itemsOf(deps: ShardFeedDeps, rows: readonly FeedRow[], filter: FeedFilter): Promise<FeedItem[]> {
  const personalData = deps.personalData;
  const unencoded = personalData && rows.filter((row) => row.encoded === undefined || (personalData.isPersonal(row) && encodedAt.get(row) !== personalData.generation));
  const keys = unencoded && unencoded.length > 0 ? await personalData.keysForRows(unencoded) : undefined;
  return toItems(deps, rows, filter, keys);
}

function toItems(deps: ShardFeedDeps, rows: readonly FeedRow[], filter: FeedFilter, keys: ReadonlyMap<string, SubjectKey> | undefined): FeedItem[] {
  const items: FeedItem[] = [];
  // Copies in a row collapse to one barrier per origin shard (the newest position).
  const barriers = new Map<string, ShardPosition>();
  const flushBarriers = () => {
    for (const [originShard, at] of barriers) items.push({ barrier: { originShard, originPosition: formatPosition(at) } });
    barriers.clear();
  };
  let lastItemAt: ShardPosition | undefined;
  for (const row of rows) {
    const { aggregateType, aggregateId } = deps.parseStreamId(row.streamId);
    if (!streamMatches(filter, row.streamId, aggregateType)) continue;
    if (row.origin !== undefined) {
      const seen = barriers.get(row.origin.shard);
      if (seen === undefined || comparePositions(seen, row.origin.at) < 0) barriers.set(row.origin.shard, row.origin.at);
      continue;
    }
    if (!eventMatches(filter, row.type)) continue;
    if (filter.tenant !== undefined && tenantOf(row) !== filter.tenant) continue;
    flushBarriers();
    // One item per row, shared by every subscriber (and by its encoding: see shard/subscription-services.ts);
    // a row with personal data gets a new one once a key may have changed (erased since).
    const personal = keys !== undefined && deps.personalData!.isPersonal(row);
    if (row.encoded === undefined || (personal && encodedAt.get(row) !== deps.personalData!.generation)) {
      row.encoded = { event: { event: toEncodedEvent(deps, row, aggregateType, aggregateId, keys), position: formatPosition(row.at), streamId: row.streamId } };
      if (personal) encodedAt.set(row, deps.personalData!.generation);
    }
    items.push(row.encoded);
    lastItemAt = row.at;
  }
  flushBarriers();
  const end = rows[rows.length - 1]!.at;
  if (lastItemAt === undefined || comparePositions(lastItemAt, end) < 0) items.push({ progress: formatPosition(end) });
  return items;
}

/** The tenant of a row's stream, as recorded in its metadata ('' for events from before tenants). */
function tenantOf(row: FeedRow): string {
  if (row.tenant === undefined) {
    const t = (JSON.parse(row.metadata) as { tenant?: unknown }).tenant;
    row.tenant = typeof t === 'string' ? t : '';
  }
  return row.tenant;
}

/** The key generation each row with personal data was encoded at. */
const encodedAt = new WeakMap<FeedRow, number>();

function toEncodedEvent(deps: ShardFeedDeps, row: FeedRow, aggregateType: string, aggregateId: string, keys: ReadonlyMap<string, SubjectKey> | undefined): Buffer {
  let data = keys ? deps.personalData!.revealText(deps.deciders.get(aggregateType), row, keys) : row.data;
  let schemaVersion = row.schemaVersion;
  const decider = deps.deciders.get(aggregateType);
  const current = decider?.eventSchemaVersions[row.type] ?? schemaVersion;
  if (decider && schemaVersion < current) {
    data = JSON.stringify(upcast(decider, row.type, schemaVersion, JSON.parse(data)));
    schemaVersion = current;
  }
  return encodeEvent({
    eventId: row.eventId,
    aggregateType,
    aggregateId,
    streamId: row.streamId,
    version: row.version,
    type: row.type,
    schemaVersion,
    data,
    recordedAtMs: row.recordedAt.getTime(),
    metadata: row.metadata === '{}' ? {} : stringMap(row.metadata),
    shardId: deps.shardId,
  });
}

function stringMap(json: string): Record<string, string> {
  const parsed: unknown = JSON.parse(json);
  const out: Record<string, string> = {};
  if (typeof parsed !== 'object' || parsed === null) return out;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

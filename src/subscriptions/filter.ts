/**
 * What a subscription asks for: aggregate types, event types and (for a
 * consumer group member) partitions. Applied to each feed row by the shard
 * that reads it.
 */
import { ValidationError, type FieldViolation } from '../errors.js';
import { partitionOf } from './partition.js';

export interface FeedFilter {
  /** Empty = all. */
  readonly aggregateTypes: ReadonlySet<string>;
  /** Empty = all. */
  readonly eventTypes: ReadonlySet<string>;
  readonly partitions: { readonly count: number; readonly members: ReadonlySet<number> } | undefined;
  /** Only events of this tenant's streams (a tenant-bound reader); undefined = every tenant. */
  readonly tenant?: string;
}

/** At most this many names per filter list. */
const MAX_NAMES = 256;

/**
 * Validates a request's filters, and its aggregate types against the
 * registered ones when `knownTypes` is given (a router knows no domain: the
 * shards check those).
 * @throws ValidationError listing every problem: an unknown aggregate type,
 *   an empty or over-long name, too many names, a partition out of range.
 */
export function parseFilter(
  request: { aggregateTypes: readonly string[]; eventTypes: readonly string[]; partitionCount?: number; partitions?: readonly number[] },
  knownTypes: readonly string[] | undefined,
): FeedFilter {
  const violations: FieldViolation[] = [];
  const names = (field: string, list: readonly string[]) => {
    if (list.length > MAX_NAMES) violations.push({ field, description: `at most ${MAX_NAMES} names` });
    for (const n of list) {
      if (n.length === 0 || n.length > 200) violations.push({ field, description: 'names are 1 to 200 characters' });
    }
  };
  names('aggregate_types', request.aggregateTypes);
  names('event_types', request.eventTypes);
  for (const t of knownTypes ? request.aggregateTypes : []) {
    if (t.length > 0 && !knownTypes!.includes(t)) violations.push({ field: 'aggregate_types', description: `unknown aggregate type "${t.slice(0, 100)}"; one of ${knownTypes!.join(', ')}` });
  }
  const count = request.partitionCount ?? 0;
  const members = request.partitions ?? [];
  if (count > 65_536) violations.push({ field: 'partition_count', description: 'at most 65536' });
  if (count === 0 && members.length > 0) violations.push({ field: 'partitions', description: 'need a partition_count' });
  for (const p of members) if (p >= count && count > 0) violations.push({ field: 'partitions', description: `${p} is not below partition_count ${count}` });
  if (violations.length > 0) throw new ValidationError(violations);
  return {
    aggregateTypes: new Set(request.aggregateTypes),
    eventTypes: new Set(request.eventTypes),
    partitions: count > 0 ? { count, members: new Set(members) } : undefined,
  };
}

/** A filter as a string: two subscribers with equal keys see the same items (see `LiveTail.afterShared`). */
export function filterKey(filter: FeedFilter): string {
  const sorted = (names: Iterable<string | number>) => [...names].sort().join(',');
  const p = filter.partitions;
  return `${sorted(filter.aggregateTypes)}|${sorted(filter.eventTypes)}|${p ? `${p.count}:${sorted(p.members)}` : ''}|${filter.tenant ?? '*'}`;
}

export const ALL: FeedFilter = { aggregateTypes: new Set(), eventTypes: new Set(), partitions: undefined };

/** Whether the filter lets a stream's events through (aggregate type and partition). */
export function streamMatches(filter: FeedFilter, streamId: string, aggregateType: string): boolean {
  if (filter.aggregateTypes.size > 0 && !filter.aggregateTypes.has(aggregateType)) return false;
  return filter.partitions === undefined || filter.partitions.members.has(partitionOf(streamId, filter.partitions.count));
}

export function eventMatches(filter: FeedFilter, eventType: string): boolean {
  return filter.eventTypes.size === 0 || filter.eventTypes.has(eventType);
}

/**
 * Splits a stream id (`${aggregateType}-${aggregateId}`) with the registered
 * types, longest first (a type may itself contain '-').
 */
export function streamIdParser(knownTypes: readonly string[]): (streamId: string) => { aggregateType: string; aggregateId: string } {
  const types = [...knownTypes].sort((a, b) => b.length - a.length);
  return (streamId) => {
    for (const t of types) {
      if (streamId.length > t.length + 1 && streamId.startsWith(t) && streamId[t.length] === '-') {
        return { aggregateType: t, aggregateId: streamId.slice(t.length + 1) };
      }
    }
    return { aggregateType: '', aggregateId: streamId };
  };
}

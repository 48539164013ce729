/**
 * Validation of a member's `JoinGroup` message, with its defaults.
 */
import { ValidationError, type FieldViolation } from '../../src/errors.js';
import type { JoinGroup__Output } from '../../src/generated/shardwrite/v1/JoinGroup.js';
import { byCodeUnits } from './assignment.js';

/** Unacknowledged events per member before the server waits for acks. @default 256 */
export const DEFAULT_MAX_UNACKED = 256;
export const MAX_MAX_UNACKED = 10_000;
/** Partitions of a new group. @default 16 */
export const DEFAULT_PARTITIONS = 16;
export const MAX_PARTITIONS = 1024;

const GROUP_NAME = /^[A-Za-z0-9._-]{1,100}$/;
/** As the subscription's own filter rules (`src/subscriptions/filter.ts`): 1 to 200 characters, at most 256 names. */
const FILTER_NAME = { test: (name: string) => name.length >= 1 && name.length <= 200 && !hasControlCharacter(name) };
/** Whether `s` holds a character below U+0020. */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return true;
  return false;
}
const MAX_FILTERS = 256;

/** A validated join, defaults applied. */
export interface JoinSpec {
  readonly group: string;
  /** For logs and metrics; "" when the member gave none. */
  readonly member: string;
  /** Sorted, without duplicates (empty = all). */
  readonly aggregateTypes: readonly string[];
  readonly eventTypes: readonly string[];
  readonly startFrom: '' | 'end';
  readonly maxUnacked: number;
  readonly partitions: number;
}

/** @throws ValidationError listing every violated rule. */
export function validateJoin(join: JoinGroup__Output): JoinSpec {
  const violations: FieldViolation[] = [];
  if (!GROUP_NAME.test(join.group)) violations.push({ field: 'join.group', description: 'must match [A-Za-z0-9._-]{1,100}' });
  if (join.member.length > 100 || hasControlCharacter(join.member)) {
    violations.push({ field: 'join.member', description: 'at most 100 characters, no control characters' });
  }
  const filters = (field: string, names: readonly string[]): string[] => {
    if (names.length > MAX_FILTERS) violations.push({ field, description: `at most ${MAX_FILTERS} names` });
    for (const n of names) if (!FILTER_NAME.test(n)) violations.push({ field, description: `"${n.slice(0, 40)}" is not a type name` });
    return [...new Set(names)].sort(byCodeUnits);
  };
  const aggregateTypes = filters('join.aggregate_types', join.aggregateTypes);
  const eventTypes = filters('join.event_types', join.eventTypes);
  if (join.startFrom !== '' && join.startFrom !== 'end') violations.push({ field: 'join.start_from', description: 'must be "" (the beginning) or "end"' });
  if (join.maxUnacked > MAX_MAX_UNACKED) violations.push({ field: 'join.max_unacked', description: `at most ${MAX_MAX_UNACKED}` });
  if (join.partitions > MAX_PARTITIONS) violations.push({ field: 'join.partitions', description: `at most ${MAX_PARTITIONS}` });
  if (violations.length > 0) throw new ValidationError(violations);
  return {
    group: join.group,
    member: join.member,
    aggregateTypes,
    eventTypes,
    startFrom: join.startFrom === 'end' ? 'end' : '',
    maxUnacked: join.maxUnacked === 0 ? DEFAULT_MAX_UNACKED : join.maxUnacked,
    partitions: join.partitions === 0 ? DEFAULT_PARTITIONS : join.partitions,
  };
}

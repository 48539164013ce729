/**
 * Which member of a group should hold which partition: a pure function of the
 * live members, so every router computes the same answer from the same rows.
 */

/**
 * Partition `p` goes to the `p mod n`-th of the `n` live member ids in
 * sorted order (code-unit order, as PostgreSQL's `COLLATE "C"` sorts them).
 * Balanced to within one partition, and a member joining or leaving moves
 * only what the new order moves.
 *
 * @returns the partitions `member` should hold, ascending (none when it is not among `members`).
 */
export function desiredPartitions(members: readonly string[], partitionCount: number, member: string): number[] {
  const sorted = [...new Set(members)].sort(byCodeUnits);
  const index = sorted.indexOf(member);
  if (index < 0) return [];
  const mine: number[] = [];
  for (let p = index; p < partitionCount; p += sorted.length) mine.push(p);
  return mine;
}

export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * How a consumer group splits the events: by stream, so that every event of
 * a stream lands in the same partition and is delivered in order.
 */

/**
 * The partition of `streamId` among `count` (FNV-1a over its UTF-16 code
 * units, modulo `count`). Stable across processes and releases: consumer
 * group checkpoints are kept per partition, so changing it would misplace them.
 *
 * @throws RangeError when `count` is not an integer from 1 to 65,536.
 */
export function partitionOf(streamId: string, count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > 65_536) throw new RangeError(`partition count ${count} is not from 1 to 65536`);
  let hash = 0x811c9dc5;
  for (let i = 0; i < streamId.length; i++) {
    hash ^= streamId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** Converts pipeline results to the proto messages (int64 as strings, data as JSON). */
import type { CommandResult } from '../generated/shardwrite/v1/CommandResult.js';
import type { Event } from '../generated/shardwrite/v1/Event.js';
import type { CommandOutcome } from '../pipeline/pipeline.js';
import type { StoredEvent } from '../store/types.js';

export function toWireEvent(e: StoredEvent): Event {
  const ms = e.recordedAt.getTime();
  return {
    streamId: e.streamId,
    version: String(e.version),
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: JSON.stringify(e.data),
    position: e.position.toString(),
    recordedAt: { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 },
    metadata: { ...e.metadata },
  };
}

export function toWireResult(o: CommandOutcome): CommandResult {
  return { streamId: o.streamId, version: String(o.version), events: o.events.map(toWireEvent), duplicate: o.duplicate };
}

/**
 * Rehydrates aggregates: owner cache first, then the stored events (upcast to
 * the current schema). Snapshot tiers plug in here, never in the pipeline.
 */
import type { AnyDecider } from '../domain/decider.js';
import { upcast } from '../domain/upcast.js';
import type { EventReader, StoredEvent } from '../store/types.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import { MAX_TRACKED_COMMAND_IDS, type CachedAggregate, type CommandVersions, type OwnerCache } from './owner-cache.js';

export type LoadTier = 'memory' | 'redis' | 'snapshot' | 'replay';

export interface LoadedAggregate extends CachedAggregate {
  readonly tier: LoadTier;
  /** Events applied on top of the tier's starting point. */
  readonly replayed: number;
}

export class AggregateLoader {
  constructor(
    private readonly reader: EventReader,
    private readonly cache: OwnerCache,
    private readonly metrics?: PipelineMetrics,
  ) {}

  async load(streamId: string, decider: AnyDecider): Promise<LoadedAggregate> {
    const cached = this.cache.get(streamId);
    if (cached) {
      this.metrics?.loads.inc({ tier: 'memory' });
      return { ...cached, tier: 'memory', replayed: 0 };
    }
    const events = await this.reader.readStream(streamId, 1);
    const loaded = replay(decider, decider.initialState(), 0, new Map(), events);
    this.metrics?.loads.inc({ tier: 'replay' });
    this.metrics?.replayedEvents.observe(events.length);
    this.metrics?.eventsSinceSnapshot.observe({ aggregate_type: decider.aggregateType }, events.length);
    const value = { ...loaded, tier: 'replay' as const, replayed: events.length };
    this.cache.set(streamId, value);
    return value;
  }

  /** The stream's state after a successful append by this process. */
  remember(streamId: string, value: CachedAggregate): void {
    this.cache.set(streamId, value);
  }

  /** Forgets the stream: its stored state is uncertain or owned elsewhere. */
  forget(streamId: string): void {
    this.cache.delete(streamId);
  }

  /** Upcasts stored events for readers (ReadStream, duplicate results). */
  upcastEvent(decider: AnyDecider, event: StoredEvent): StoredEvent {
    const current = decider.eventSchemaVersions[event.type] ?? 1;
    if (event.schemaVersion === current) return event;
    return { ...event, data: upcast(decider, event.type, event.schemaVersion, event.data), schemaVersion: current };
  }
}

/**
 * Applies `events` to `state`. When `commandIds` is a map it is extended with
 * the events' command ids, so a full replay knows every id on the stream.
 */
export function replay(
  decider: AnyDecider,
  state: unknown,
  version: number,
  commandIds: Map<string, CommandVersions> | undefined,
  events: readonly StoredEvent[],
): CachedAggregate {
  let s = state;
  let v = version;
  let ids = commandIds;
  for (const event of events) {
    if (event.version !== v + 1) throw new Error(`stream ${event.streamId} has a gap at version ${v + 1}`);
    const data = upcast(decider, event.type, event.schemaVersion, event.data);
    s = decider.evolve(s, { type: event.type, data });
    v = event.version;
    const commandId = event.metadata.command_id;
    if (ids && commandId) {
      const seen = ids.get(commandId);
      ids.set(commandId, { firstVersion: seen?.firstVersion ?? v, lastVersion: v });
      if (ids.size > MAX_TRACKED_COMMAND_IDS) ids = undefined;
    }
  }
  return { state: s, version: v, commandIds: ids };
}

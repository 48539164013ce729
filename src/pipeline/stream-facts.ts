/**
 * What a round reads about a stream besides its state: its tenant (cached for
 * good) and which of the round's command ids it already holds.
 */
import type { EventReader } from '../store/types.js';
import type { Pending } from './decide-round.js';
import type { CommandVersions } from './aggregate-cache.js';

/** Stream tenants the pipeline remembers. @default 100000 */
const TENANT_CACHE_ENTRIES = 100_000;

/**
 * The tenant of each existing stream. It never changes (a move copies it), so
 * it is cached for good; a bounded map, oldest entries first out.
 */
export class StreamTenants {
  private readonly tenants = new Map<string, string>();

  constructor(private readonly reader: Pick<EventReader, 'streamTenant'>) {}

  /** The stream's tenant; undefined when the stream does not exist. */
  async of(streamId: string): Promise<string | undefined> {
    const cached = this.tenants.get(streamId);
    if (cached !== undefined) return cached;
    const tenant = await this.reader.streamTenant(streamId);
    if (tenant !== undefined) this.remember(streamId, tenant);
    return tenant;
  }

  remember(streamId: string, tenant: string): void {
    this.tenants.set(streamId, tenant);
    if (this.tenants.size > TENANT_CACHE_ENTRIES) this.tenants.delete(this.tenants.keys().next().value!);
  }
}

/**
 * Command ids of this batch already recorded on the stream. Uses the
 * cached index when it is complete, else one batched store lookup.
 */
export async function knownCommands(
  reader: Pick<EventReader, 'findCommands'>,
  streamId: string,
  cached: ReadonlyMap<string, CommandVersions> | undefined,
  live: readonly Pending[],
): Promise<ReadonlyMap<string, CommandVersions> | Error> {
  const ids = [...new Set(live.map((p) => p.routed.commandId).filter((id): id is string => id !== undefined))];
  if (ids.length === 0) return new Map();
  if (cached) return cached;
  try {
    const records = await reader.findCommands(ids.map((commandId) => ({ streamId, commandId })));
    return new Map(records.map((r) => [r.commandId, { firstVersion: r.firstVersion, lastVersion: r.lastVersion, ...(r.requestDigest ? { requestDigest: r.requestDigest } : {}) }]));
  } catch (err) {
    return err as Error;
  }
}

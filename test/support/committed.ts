/** Every event the cluster committed, read from the shards' stores (a copy made by a rebalance counts once, where it was first committed). */
import pg from 'pg';
import type { ShardStore } from './checker.js';

export interface CommittedEvent {
  readonly eventId: string;
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
}

export async function readCommitted(stores: readonly ShardStore[], streamFilter = '%'): Promise<CommittedEvent[]> {
  const out: CommittedEvent[] = [];
  for (const s of stores) {
    const c = new pg.Client({ connectionString: s.url });
    await c.connect();
    try {
      const { rows } = await c.query<{ event_id: string; stream_id: string; version: string; type: string }>(
        `SELECT event_id::text, stream_id, version, type FROM events WHERE origin_shard IS NULL AND stream_id LIKE $1
         UNION ALL
         SELECT event_id::text, stream_id, version, type FROM moved_events WHERE origin_shard IS NULL AND stream_id LIKE $1`,
        [streamFilter],
      );
      for (const r of rows) out.push({ eventId: r.event_id, streamId: r.stream_id, version: Number(r.version), type: r.type });
    } finally {
      await c.end();
    }
  }
  return out;
}

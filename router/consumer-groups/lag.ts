/**
 * Per-group lag at the router's `/metrics`.
 *
 * Events: for each partition, the sum over shards of (the shard's tail
 * position − the partition checkpoint's position there); the group's lag is
 * its worst partition. Positions are identity values, so this is an honest
 * approximation rather than a count: it includes events of other partitions
 * and of types the group filters out (the partition still reads past them),
 * and gaps left by rolled-back appends. It reads 0 when every partition has
 * passed the tail. Published by every router for every group in the ring
 * database, also groups nobody consumes now (whose lag is what an alert
 * must see); alert on the max per group.
 *
 * Seconds: the age of the oldest event a member of this router still has to
 * finish (`MemberSession.lagSeconds`), worst member per group, 0 when all are
 * caught up; published only for groups with members in this router.
 */
import type { Logger } from '../../src/observability/logger.js';
import { parsePosition } from '../../src/subscriptions/position.js';
import type { RouterMetrics } from '../metrics.js';
import { cursorOf } from './cursors.js';
import type { ClusterFeeds } from './feeds.js';
import type { MemberSession } from './session.js';
import type { PgGroupStore } from './store.js';

/** How often lag is computed (one tails read and one small query per router). @default 5000 ms */
export const LAG_SAMPLE_MS = 5000;

/**
 * Positions between `checkpoint` and the shards' `tails` (`"tx:position"`
 * per shard), summed over the shards; a shard the checkpoint does not name
 * counts from 0, one it marks done counts 0.
 *
 * @throws ValidationError when the checkpoint or a tail is malformed.
 */
export function eventsBehind(tails: ReadonlyMap<string, string>, checkpoint: string): number {
  const cursor = cursorOf(checkpoint);
  let behind = 0n;
  for (const [shard, tail] of tails) {
    const at = cursor.get(shard);
    if (at === 'done') continue;
    const gap = parsePosition(tail).position - (at?.position ?? 0n);
    if (gap > 0n) behind += gap;
  }
  return Number(behind);
}

export interface LagSamplerDeps {
  readonly store: PgGroupStore;
  readonly feeds: ClusterFeeds;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  readonly sessions: () => ReadonlyMap<string, ReadonlySet<MemberSession>>;
  /** @default {@link LAG_SAMPLE_MS} */
  readonly intervalMs?: number;
}

/** Recomputes the lag gauges every `intervalMs`; a failed sample keeps the previous values. */
export class LagSampler {
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(private readonly deps: LagSamplerDeps) {}

  start(): void {
    this.#timer = setInterval(() => void this.sample(), this.deps.intervalMs ?? LAG_SAMPLE_MS);
    this.#timer.unref();
    void this.sample();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One sample (exposed for tests). */
  async sample(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const [groups, tails] = await Promise.all([this.deps.store.checkpoints(), this.deps.feeds.tails()]);
      const events = new Map<string, number>();
      for (const g of groups) events.set(g.group, Math.max(0, ...g.checkpoints.map((c) => eventsBehind(tails, c))));
      const now = Date.now();
      const seconds = new Map<string, number>();
      const members = new Map<string, number>();
      for (const [group, sessions] of this.deps.sessions()) {
        members.set(group, sessions.size);
        seconds.set(group, Math.max(0, ...[...sessions].map((s) => s.lagSeconds(now))));
      }
      const m = this.deps.metrics;
      m.consumerGroupLagEvents.reset();
      m.consumerGroupLagSeconds.reset();
      m.consumerGroupMembers.reset();
      for (const [group, v] of events) m.consumerGroupLagEvents.set({ group }, v);
      for (const [group, v] of seconds) m.consumerGroupLagSeconds.set({ group }, v);
      for (const [group, v] of members) m.consumerGroupMembers.set({ group }, v);
    } catch (err) {
      this.deps.logger.warn({ err }, 'consumer group lag sample failed');
    } finally {
      this.#running = false;
    }
  }
}

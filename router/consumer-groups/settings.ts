/**
 * The router's consumer-group settings, read by `router/config.ts` through
 * `readConsumerGroupSettings` so they are validated with everything else.
 */
import { int, type EnvReader } from '../../src/config.js';

export interface ConsumerGroupSettings {
  /**
   * CONSUMER_GROUP_LEASE_MS — how long a partition lease and a member's
   * registration last without a heartbeat: how long the partitions of a
   * router that died stay unserved. Default {@link DEFAULT_LEASE_MS}.
   */
  readonly leaseMs: number;
  /**
   * CONSUMER_GROUP_HEARTBEAT_MS — how often a router renews its members and
   * leases and recomputes their assignment (at most a third of the lease).
   * Default {@link DEFAULT_HEARTBEAT_MS}.
   */
  readonly heartbeatMs: number;
  /**
   * CONSUMER_GROUP_HANDOVER_MS — how long a member that must give a partition
   * up may take to acknowledge what it was sent of it before the partition is
   * released anyway (its unacknowledged events then go to the next owner
   * again). Default {@link DEFAULT_HANDOVER_MS}.
   */
  readonly handoverMs: number;
  /** CONSUMER_GROUP_FLUSH_MS — acknowledged checkpoints are written at most this often. Default {@link DEFAULT_FLUSH_MS}. */
  readonly flushMs: number;
}

/** @default 10,000 ms */
export const DEFAULT_LEASE_MS = 10_000;
/** @default 1000 ms */
export const DEFAULT_HEARTBEAT_MS = 1000;
/** @default 5000 ms */
export const DEFAULT_HANDOVER_MS = 5000;
/** @default 200 ms */
export const DEFAULT_FLUSH_MS = 200;

export const DEFAULT_CONSUMER_GROUP_SETTINGS: ConsumerGroupSettings = {
  leaseMs: DEFAULT_LEASE_MS,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  handoverMs: DEFAULT_HANDOVER_MS,
  flushMs: DEFAULT_FLUSH_MS,
};

/** The settings `readConsumerGroupSettings` reads. */
/** The settings `readConsumerGroupSettings` reads. */
export const CONSUMER_GROUP_SETTINGS = {
  CONSUMER_GROUP_LEASE_MS: int(DEFAULT_LEASE_MS, 300, 3_600_000),
  CONSUMER_GROUP_HEARTBEAT_MS: int(DEFAULT_HEARTBEAT_MS, 50, 1_200_000),
  CONSUMER_GROUP_HANDOVER_MS: int(DEFAULT_HANDOVER_MS, 0, 3_600_000),
  CONSUMER_GROUP_FLUSH_MS: int(DEFAULT_FLUSH_MS, 10, 60_000),
} as const;

/** Reads the consumer-group settings into `r`, which collects the problems. */
export function readConsumerGroupSettings(r: EnvReader<typeof CONSUMER_GROUP_SETTINGS>): ConsumerGroupSettings {
  const settings: ConsumerGroupSettings = {
    leaseMs: r.int('CONSUMER_GROUP_LEASE_MS'),
    heartbeatMs: r.int('CONSUMER_GROUP_HEARTBEAT_MS'),
    handoverMs: r.int('CONSUMER_GROUP_HANDOVER_MS'),
    flushMs: r.int('CONSUMER_GROUP_FLUSH_MS'),
  };
  // Two missed heartbeats must not lose a lease.
  if (settings.heartbeatMs * 3 > settings.leaseMs) {
    r.problem(`CONSUMER_GROUP_HEARTBEAT_MS (${settings.heartbeatMs}) must be at most a third of CONSUMER_GROUP_LEASE_MS (${settings.leaseMs})`);
  }
  return settings;
}

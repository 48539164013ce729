/**
 * Prometheus metrics of a router, on a registry the composition root owns.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Breaker states as the `shardwrite_router_breaker_state` gauge reports them. */
export const BREAKER_STATE = { closed: 0, halfOpen: 1, open: 2 } as const;

/**
 * The router's own series (prefix `shardwrite_router_`): requests by method,
 * code and shard, their latency, WRONG_SHARD retries, each shard's breaker
 * and channel state, the ring epoch routed by, and consumer-group lag.
 */
export class RouterMetrics {
  readonly requests: Counter<'method' | 'code' | 'shard'>;
  readonly seconds: Histogram<'method' | 'shard'>;
  readonly wrongShardRetries: Counter<'outcome'>;
  readonly breakerState: Gauge<'shard'>;
  readonly channelReady: Gauge<'shard'>;
  readonly ringEpoch: Gauge;
  readonly consumerGroupLagEvents: Gauge<'group'>;
  readonly consumerGroupLagSeconds: Gauge<'group'>;
  readonly consumerGroupMembers: Gauge<'group'>;

  constructor(readonly registry: Registry) {
    this.requests = new Counter({
      name: 'shardwrite_router_requests_total',
      help: 'Calls forwarded (or refused) by the router, by method, gRPC status code name and shard ("none" when no shard was chosen)',
      labelNames: ['method', 'code', 'shard'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'shardwrite_router_request_duration_seconds',
      help: 'Time from receiving a call to sending its status, by method and shard',
      labelNames: ['method', 'shard'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.wrongShardRetries = new Counter({
      name: 'shardwrite_router_wrong_shard_retries_total',
      help: 'Calls retried after a shard answered WRONG_SHARD, by the outcome of the retry (ok, error)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.breakerState = new Gauge({
      name: 'shardwrite_router_breaker_state',
      help: 'Circuit breaker state per shard: 0 closed, 1 half-open, 2 open',
      labelNames: ['shard'],
      registers: [registry],
    });
    this.channelReady = new Gauge({
      name: 'shardwrite_router_shard_channel_ready',
      help: '1 while the channel to the shard is connected (READY), else 0',
      labelNames: ['shard'],
      registers: [registry],
    });
    this.ringEpoch = new Gauge({
      name: 'shardwrite_router_ring_epoch',
      help: 'The ring epoch this router routes by (0 = no ring yet)',
      registers: [registry],
    });
    // Set by router/consumer-groups/lag.ts, which documents how each is computed.
    this.consumerGroupLagEvents = new Gauge({
      name: 'shardwrite_router_consumer_group_lag_events',
      help: 'Feed positions between the tail and the slowest partition checkpoint of a consumer group (an approximation of events behind; every router reports every group)',
      labelNames: ['group'],
      registers: [registry],
    });
    this.consumerGroupLagSeconds = new Gauge({
      name: 'shardwrite_router_consumer_group_lag_seconds',
      help: "Age of the oldest event a consumer group's members on this router have not finished (0 when caught up)",
      labelNames: ['group'],
      registers: [registry],
    });
    this.consumerGroupMembers = new Gauge({
      name: 'shardwrite_router_consumer_group_members',
      help: 'Consumer group members served by this router',
      labelNames: ['group'],
      registers: [registry],
    });
  }

  /** Reports the shared shard feeds (router/subscriptions/shared-upstream.ts) when scraped. */
  watchSharedFeeds(stats: () => { readonly feeds: number; readonly consumers: number }, registry: Registry): void {
    new Gauge({
      name: 'shardwrite_router_shared_feeds',
      help: 'Shard feed calls shared by live subscribers (one per shard, filter and credentials)',
      registers: [registry],
      collect() {
        this.set(stats().feeds);
      },
    });
    new Gauge({
      name: 'shardwrite_router_shared_feed_followers',
      help: 'Subscribers reading a shared shard feed instead of a call of their own (one per shard each)',
      registers: [registry],
      collect() {
        this.set(stats().consumers);
      },
    });
  }
}

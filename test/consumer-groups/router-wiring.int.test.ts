/**
 * ConsumerGroupService inside a real router (`startRouter`), fed by the
 * in-memory cluster feed: served, lag at /metrics, and members let go on close.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { loadRouterConfig } from '../../router/config.js';
import { startRouter, type RunningRouter } from '../../router/router.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { FakeFeeds } from './support/fake-feeds.js';
import { TestMember, until } from './support/member.js';

let ringDb: TestDatabase | undefined;
let router: RunningRouter | undefined;

afterAll(async () => {
  await router?.close();
  await ringDb?.drop();
});

describe('the router with consumer groups', () => {
  it('serves ConsumerGroupService, publishes group lag at /metrics, and sends members away when it stops', async () => {
    ringDb = await createTestDatabase('sw_ring');
    const feeds = new FakeFeeds();
    for (let i = 0; i < 30; i++) feeds.append(`order-header-w${i % 6}`);
    const config = loadRouterConfig({
      SHARDWRITE_INSECURE: 'true',
      GRPC_ADDRESS: '127.0.0.1:0',
      RING_DATABASE_URL: ringDb.url,
      METRICS_ADDRESS: '127.0.0.1:0',
      RING_POLL_MS: '100',
      CONSUMER_GROUP_LEASE_MS: '1500',
      CONSUMER_GROUP_HEARTBEAT_MS: '100',
      SHUTDOWN_GRACE_MS: '30000',
    });
    expect(config.consumerGroups).toMatchObject({ leaseMs: 1500, heartbeatMs: 100 });
    router = await startRouter(config, { logger: createLogger('test', 'silent'), clusterFeeds: feeds });

    const member = new TestMember(router.address, { group: 'wired', partitions: 4 });
    await until('the member has every event', () => member.events.length === 30);
    await expect
      .poll(async () => (await fetch(`http://${router!.metricsAddress}/metrics`)).text(), { timeout: 15_000, interval: 250 })
      .toMatch(/shardwrite_router_consumer_group_lag_events\{group="wired"\} [1-9]/);

    const stopping = router.close();
    const status = await member.ended;
    // Told by the router itself (not cut off when the grace period ran out).
    expect(status).toMatchObject({ code: grpc.status.UNAVAILABLE, message: expect.stringContaining('join again') });
    await stopping;
    router = undefined;
  });
});

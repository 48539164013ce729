import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { loadRouterConfig } from '../../router/config.js';
import { startRouter, type RunningRouter } from '../../router/router.js';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { ConfigError } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { PgRingStore } from '../../src/ring/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';

const silent = createLogger('test', 'silent');
let ringDb: TestDatabase;
let shardDb: TestDatabase;
let store: PgRingStore;
let router: RunningRouter;
let client: Clients;
let shard: RunningShard | undefined;
let health: grpc.Client;

function check(service = ''): Promise<string> {
  return new Promise((resolve, reject) =>
    (health as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service }, (e, r) =>
      e ? reject(e) : resolve(r.status),
    ),
  );
}

beforeAll(async () => {
  [ringDb, shardDb] = await Promise.all([createTestDatabase('sw_ring'), createTestDatabase('sw_rshard')]);
  store = new PgRingStore({ connectionString: ringDb.url });
  const config = loadRouterConfig({ GRPC_ADDRESS: '127.0.0.1:0', RING_DATABASE_URL: ringDb.url, METRICS_ADDRESS: 'off', RING_POLL_MS: '100' });
  router = await startRouter(config, { logger: silent });
  client = connect(router.address);
  const api = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  health = new api.grpc.health.v1.Health(router.address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  health?.close();
  client?.close();
  await router?.close();
  await shard?.close();
  await store?.close();
  await ringDb?.drop();
  await shardDb?.drop();
});

describe('router health and availability', () => {
  it('says NOT_SERVING and refuses calls with SHARD_UNAVAILABLE while there is no ring', async () => {
    expect(await check()).toBe('NOT_SERVING');
    expect(await check('shardwrite.v1.OrderService')).toBe('NOT_SERVING');
    const r = await client.attempt('PlaceOrder', placeOrder('o-early'));
    expect('error' in r && r.error).toMatchObject({ code: grpc.status.UNAVAILABLE, reason: 'SHARD_UNAVAILABLE' });
  });

  it('stays NOT_SERVING with a ring whose only shard cannot be reached, failing its calls fast', async () => {
    await store.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-0', address: '127.0.0.1:1' }] });
    await expect.poll(() => router.watcher.epoch, { timeout: 5000 }).toBe(1);
    const started = performance.now();
    const r = await client.attempt('PlaceOrder', placeOrder('o-nowhere'), { deadlineMs: 10_000 });
    expect('error' in r && r.error).toMatchObject({ code: grpc.status.UNAVAILABLE, reason: 'SHARD_UNAVAILABLE' });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await check()).toBe('NOT_SERVING');
  });

  it('turns SERVING once the ring points at a shard that answers, and routes to it', async () => {
    const config = loadShardConfig({
      SHARD_ID: 'shard-0',
      GRPC_ADDRESS: '127.0.0.1:0',
      DATABASE_URL: shardDb.url,
      RING_DATABASE_URL: ringDb.url,
      METRICS_ADDRESS: 'off',
    });
    shard = await startShard(config, { logger: silent });
    await store.publish({ epoch: 2, shards: [{ id: 'shard-0', address: shard.address }] }, 1);
    await expect.poll(() => check(), { timeout: 5000 }).toBe('SERVING');
    expect((await client.call('PlaceOrder', placeOrder('o-served'))).streamId).toBe('order-header-o-served');
  });

  it('says NOT_SERVING while draining', async () => {
    const closing = router.close();
    await expect.poll(() => check().catch(() => 'gone'), { timeout: 5000 }).not.toBe('SERVING');
    await closing;
  });
});

describe('loadRouterConfig', () => {
  it('needs the ring database and lists every problem at once', () => {
    let err: unknown;
    try {
      loadRouterConfig({ GRPC_ADDRESS: 'nope', BREAKER_RESET_MS: '-1', RING_BOOTSTRAP: 'shard-0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/RING_DATABASE_URL is required/);
    expect(problems).toMatch(/GRPC_ADDRESS/);
    expect(problems).toMatch(/BREAKER_RESET_MS/);
    expect(problems).toMatch(/RING_BOOTSTRAP/);
  });

  it('documents its defaults', () => {
    const c = loadRouterConfig({ RING_DATABASE_URL: 'postgres://x@localhost/ring' });
    expect(c).toMatchObject({
      grpcAddress: '127.0.0.1:50051',
      metricsAddress: '127.0.0.1:9465',
      breaker: { errorThresholdPercent: 50, volumeThreshold: 5, windowMs: 10_000, resetMs: 1000 },
      ring: { pollMs: 2000, notify: true, bootstrap: undefined },
      shardReconnectMaxMs: 1000,
    });
  });
});

describe('forwarding through the router', () => {
  let ring: TestDatabase;
  let ringStore: PgRingStore;
  let fake: grpc.Server;
  let proxy: RunningRouter;
  let api: ReturnType<typeof grpc.loadPackageDefinition>;

  beforeAll(async () => {
    ring = await createTestDatabase('sw_ring');
    ringStore = new PgRingStore({ connectionString: ring.url });
    await ringStore.migrate();
    const { loadPackageDefinition } = await import('../../src/grpc/proto.js');
    const definition = loadPackageDefinition();
    api = grpc.loadPackageDefinition(definition);
    // A stand-in shard that reports what it received.
    fake = new grpc.Server();
    fake.addService(definition['shardwrite.v1.OrderService'] as unknown as grpc.ServiceDefinition, {
      PlaceOrder: (call: grpc.ServerUnaryCall<{ orderId: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const seen = new grpc.Metadata();
        seen.set('x-seen-deadline-ms', String(Number(call.getDeadline()) - Date.now()));
        seen.set('x-seen-correlation', String(call.metadata.get('x-correlation-id')[0]));
        cb(null, { streamId: `s-${call.request.orderId}`, version: '1', events: [], duplicate: false }, seen);
      },
      CancelOrder: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        const trailers = new grpc.Metadata();
        trailers.set('x-custom', 'kept');
        trailers.set('grpc-status-details-bin', Buffer.from([1, 2, 3]));
        cb({ code: grpc.status.ABORTED, details: 'shard says no', metadata: trailers });
      },
    });
    fake.addService(definition['shardwrite.v1.EventStoreService'] as unknown as grpc.ServiceDefinition, {
      ReadStream: async (call: grpc.ServerWritableStream<{ aggregateId: string }, unknown>) => {
        for (let v = 1; v <= 2000; v++) {
          const ok = call.write({ streamId: call.request.aggregateId, version: String(v), type: 'E', data: 'x'.repeat(500) });
          if (!ok) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      fake.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    await ringStore.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-0', address: `127.0.0.1:${port}` }] });
    proxy = await startRouter(loadRouterConfig({ GRPC_ADDRESS: '127.0.0.1:0', RING_DATABASE_URL: ring.url, METRICS_ADDRESS: 'off' }), { logger: silent });
  });

  afterAll(async () => {
    await proxy?.close();
    fake?.forceShutdown();
    await ringStore?.close();
    await ring?.drop();
  });

  function orders(): grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall> {
    const Ctor = (api as unknown as { shardwrite: { v1: { OrderService: grpc.ServiceClientConstructor } } }).shardwrite.v1.OrderService;
    return new Ctor(proxy.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;
  }

  it('passes the caller’s metadata and deadline to the shard, and the shard’s trailers back', async () => {
    const c = orders();
    try {
      const md = new grpc.Metadata();
      md.set('x-correlation-id', 'corr-42');
      const trailers = await new Promise<grpc.Metadata>((resolve, reject) => {
        const call = c.PlaceOrder!({ orderId: 'o1' }, md, { deadline: Date.now() + 7000 }, (err: Error | null) => err && reject(err));
        call.on('status', (s: grpc.StatusObject) => resolve(s.metadata));
      });
      const deadlineMs = Number(trailers.get('x-seen-deadline-ms')[0]);
      expect(deadlineMs).toBeGreaterThan(5000);
      expect(deadlineMs).toBeLessThanOrEqual(7000);
      expect(trailers.get('x-seen-correlation')).toEqual(['corr-42']);
    } finally {
      c.close();
    }
  });

  it('returns the shard’s error status, message and trailers unchanged', async () => {
    const c = orders();
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => c.CancelOrder!({ orderId: 'o1' }, (e: grpc.ServiceError) => resolve(e)));
      expect(err.code).toBe(grpc.status.ABORTED);
      expect(err.details).toBe('shard says no');
      expect(err.metadata.get('x-custom')).toEqual(['kept']);
      expect(err.metadata.get('grpc-status-details-bin')).toEqual([Buffer.from([1, 2, 3])]);
    } finally {
      c.close();
    }
  });

  it('streams every message of a long server stream through, in order', async () => {
    const Ctor = (api as unknown as { shardwrite: { v1: { EventStoreService: grpc.ServiceClientConstructor } } }).shardwrite.v1.EventStoreService;
    const c = new Ctor(proxy.address, grpc.credentials.createInsecure()) as unknown as { readStream: (r: object) => grpc.ClientReadableStream<{ version: string }> } & grpc.Client;
    try {
      const versions: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = c.readStream({ aggregateType: 'order-header', aggregateId: 'o-long' });
        s.on('data', (e) => versions.push(Number(e.version)));
        s.on('error', reject);
        s.on('end', () => resolve());
      });
      expect(versions).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    } finally {
      c.close();
    }
  });
});

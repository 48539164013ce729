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
import { decodeBatch, decodeHeaders, encodeBatch } from '../../src/grpc/link-codec.js';
import { decodeStatus, toStatusMessage } from '../../src/grpc/status.js';

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
    (health as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
  );
}

beforeAll(async () => {
  [ringDb, shardDb] = await Promise.all([createTestDatabase('sw_ring'), createTestDatabase('sw_rshard')]);
  store = new PgRingStore({ connectionString: ringDb.url });
  const config = loadRouterConfig({ SHARDWRITE_INSECURE: 'true', GRPC_ADDRESS: '127.0.0.1:0', RING_DATABASE_URL: ringDb.url, METRICS_ADDRESS: 'off', RING_POLL_MS: '100' });
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
    const deadlineMs = 10_000;
    const started = performance.now();
    const r = await client.attempt('PlaceOrder', placeOrder('o-nowhere'), { deadlineMs });
    expect('error' in r && r.error).toMatchObject({ code: grpc.status.UNAVAILABLE, reason: 'SHARD_UNAVAILABLE' });
    // Fast: well before the deadline (a generous bound, not a speed target), so it did not wait for it.
    expect(performance.now() - started).toBeLessThan(deadlineMs / 2);
    expect(await check()).toBe('NOT_SERVING');
  });

  it('turns SERVING once the ring points at a shard that answers, and routes to it', async () => {
    const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', SHARD_ID: 'shard-0', GRPC_ADDRESS: '127.0.0.1:0', DATABASE_URL: shardDb.url, RING_DATABASE_URL: ringDb.url, METRICS_ADDRESS: 'off' });
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
      loadRouterConfig({ SHARDWRITE_INSECURE: 'true', GRPC_ADDRESS: 'nope', BREAKER_RESET_MS: '-1', RING_BOOTSTRAP: 'shard-0' });
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
    const c = loadRouterConfig({ SHARDWRITE_INSECURE: 'true', RING_DATABASE_URL: 'postgres://x@localhost/ring' });
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
  const seen: { command: string; timeoutMs: number; headers: [string, string][] }[] = [];
  let batches = 0;

  beforeAll(async () => {
    ring = await createTestDatabase('sw_ring');
    ringStore = new PgRingStore({ connectionString: ring.url });
    await ringStore.migrate();
    const { loadPackageDefinition, linkDefinition } = await import('../../src/grpc/proto.js');
    const definition = loadPackageDefinition();
    api = grpc.loadPackageDefinition(definition);
    // A stand-in shard that records what reached it over the router's link, and
    // answers PlaceOrder with a result and CancelOrder with an error status.
    const stream = definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition;
    const decode = stream.Execute!.requestDeserialize as (b: Buffer) => { command: string; placeOrder?: { orderId: string } };
    const encode = stream.Execute!.responseSerialize as (o: object) => Buffer;
    fake = new grpc.Server();
    fake.addService(linkDefinition().service, {
      Execute: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on('data', (batch: Buffer) => {
          batches++;
          const out = decodeBatch(batch).map((f) => {
            const command = decode(Buffer.from(f.body));
            seen.push({ command: command.command, timeoutMs: f.timeoutMs, headers: decodeHeaders(f.headers) });
            const outcome =
              command.command === 'placeOrder'
                ? { result: { streamId: `s-${command.placeOrder!.orderId}`, version: '1', events: [], duplicate: false } }
                : { error: toStatusMessage({ code: grpc.status.ABORTED, message: 'shard says no', reason: 'VERSION_CONFLICT', metadata: { actual: '3' } }) };
            return { id: f.id, body: encode(outcome), timeoutMs: 0, headers: new Uint8Array(0) };
          });
          call.write(encodeBatch(out));
        });
      },
    });
    fake.addService(definition['shardwrite.v1.EventStoreService'] as unknown as grpc.ServiceDefinition, {
      ReadStream: (call: grpc.ServerWritableStream<{ aggregateId: string }, unknown>) =>
        void (async () => {
          for (let v = 1; v <= 2000; v++) {
            const ok = call.write({ streamId: call.request.aggregateId, version: String(v), type: 'E', data: 'x'.repeat(500) });
            if (!ok) await new Promise((r) => call.once('drain', r));
          }
          call.end();
        })(),
    });
    const port = await new Promise<number>((resolve, reject) => fake.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    await ringStore.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-0', address: `127.0.0.1:${port}` }] });
    proxy = await startRouter(loadRouterConfig({ SHARDWRITE_INSECURE: 'true', GRPC_ADDRESS: '127.0.0.1:0', RING_DATABASE_URL: ring.url, METRICS_ADDRESS: 'off' }), { logger: silent });
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

  it('sends a unary command over the link with the caller’s metadata and deadline, and answers with the result bytes', async () => {
    const c = orders();
    try {
      const md = new grpc.Metadata();
      md.set('x-correlation-id', 'corr-42');
      md.set('authorization', 'Bearer t');
      seen.length = 0;
      const reply = await new Promise<{ streamId: string; version: string }>((resolve, reject) =>
        c.PlaceOrder!({ orderId: 'o1' }, md, { deadline: Date.now() + 7000 }, (err: Error | null, r: { streamId: string; version: string }) => (err ? reject(err) : resolve(r))),
      );
      expect(reply).toMatchObject({ streamId: 's-o1', version: '1' });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.command).toBe('placeOrder');
      expect(seen[0]!.timeoutMs).toBeGreaterThan(5000);
      expect(seen[0]!.timeoutMs).toBeLessThanOrEqual(7000);
      // The router verified the caller (insecure mode: anonymous) and sends the identity, never the token.
      expect(seen[0]!.headers).toEqual(
        expect.arrayContaining([
          ['x-correlation-id', 'corr-42'],
          ['x-shardwrite-principal', 'anonymous'],
          ['x-shardwrite-tenant', ''],
        ]),
      );
      expect(seen[0]!.headers.map(([k]) => k)).not.toContain('authorization');
      expect(seen[0]!.headers.map(([k]) => k)).not.toContain('user-agent');
    } finally {
      c.close();
    }
  });

  it('batches the commands that arrive together into few link messages, and answers each call with its own result', async () => {
    const c = orders();
    try {
      seen.length = 0;
      const before = batches;
      const replies = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => new Promise<{ streamId: string }>((resolve, reject) => c.PlaceOrder!({ orderId: `b${i}` }, (err: Error | null, r: { streamId: string }) => (err ? reject(err) : resolve(r)))),
        ),
      );
      expect(replies.map((r) => r.streamId)).toEqual(Array.from({ length: 200 }, (_, i) => `s-b${i}`));
      expect(seen).toHaveLength(200);
      expect(batches - before).toBeLessThan(50);
    } finally {
      c.close();
    }
  });

  it('answers a command the shard refused with the shard’s status code, message and google.rpc.Status details', async () => {
    const c = orders();
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => c.CancelOrder!({ orderId: 'o1' }, (e: grpc.ServiceError) => resolve(e)));
      expect(err.code).toBe(grpc.status.ABORTED);
      expect(err.details).toBe('shard says no');
      const status = decodeStatus(err.metadata.get('grpc-status-details-bin')[0] as Buffer);
      expect(status).toMatchObject({ code: grpc.status.ABORTED, message: 'shard says no', reason: 'VERSION_CONFLICT', metadata: { actual: '3' } });
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

/**
 * A real cluster over loopback: a router process in front of three shard
 * processes, each on its own database, and the ring in a ring database.
 * The tests run in order and share the cluster; later ones change the ring.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createRequire } from 'node:module';
import pg from 'pg';
import { main as cli } from '../../cli/main.js';
import { PgRingStore, RingView, type RingDocument } from '../../src/ring/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients, type OrderMethod } from '../support/grpc.js';
import { startProcess, startShardProcess, type ServiceProcess } from '../support/processes.js';
import type { RpcStatus } from '../../src/grpc/status.js';

interface Shard {
  readonly id: string;
  readonly db: TestDatabase;
  readonly sql: pg.Pool;
  proc: ServiceProcess;
  client: Clients;
}

let ringDb: TestDatabase;
let ringStore: PgRingStore;
let shards: Shard[];
/** On the ring from the start. */
let live: Shard[];
/** Started with the cluster, added to the ring by the stale-ring test. */
let spare: Shard;
let router: ServiceProcess;
let routerClient: Clients;
let ring1: RingDocument;
const processes: ServiceProcess[] = [];

function shardEnv(id: string, db: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  return { SHARD_ID: id, DATABASE_URL: db.url, RING_DATABASE_URL: ringDb.url, ...extra };
}

async function startShard(id: string, db: TestDatabase, extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const p = await startShardProcess(shardEnv(id, db, extra));
  processes.push(p);
  return p;
}

async function startRouter(extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const p = await startProcess('router/main.ts', { GRPC_ADDRESS: '127.0.0.1:0', RING_DATABASE_URL: ringDb.url, METRICS_ADDRESS: '127.0.0.1:0', ...extra });
  processes.push(p);
  return p;
}

function metricsUrl(p: ServiceProcess): string {
  const m = /metrics (http:\/\/\S+\/metrics)/.exec(p.output());
  if (!m) throw new Error(`no metrics address in:\n${p.output()}`);
  return m[1]!;
}

async function metric(p: ServiceProcess, pattern: RegExp): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl(p))).text();
  const line = text.split('\n').find((l) => pattern.test(l));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** Waits for `check` outside a test (expect.poll only works inside one). */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function fenceOf(s: Shard): Promise<number> {
  return Number((await s.sql.query('SELECT epoch FROM shard_fence')).rows[0].epoch);
}

async function streamIdsOf(s: Shard): Promise<{ stream_id: string; aggregate_id: string }[]> {
  return (await s.sql.query<{ stream_id: string; aggregate_id: string }>('SELECT stream_id, aggregate_id FROM streams')).rows;
}

function shardById(id: string): Shard {
  const s = shards.find((x) => x.id === id);
  if (!s) throw new Error(`no shard ${id}`);
  return s;
}

/** Ids `prefix-0`, `prefix-1`, … for which `accept(id)` holds. */
function idsWhere(prefix: string, count: number, accept: (id: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    if (i > 100_000) throw new Error('no such ids');
    const id = `${prefix}-${i}`;
    if (accept(id)) out.push(id);
  }
  return out;
}

const address = { name: 'Grace Hopper', line1: '1 Navy Way', city: 'Arlington', postalCode: '22202', country: 'US' };

/** An order's whole life, including refusals, as a list of steps. */
function scenario(id: string): [OrderMethod, object][] {
  return [
    ['PlaceOrder', placeOrder(id, { commandId: `${id}-place` })],
    ['AddOrderLine', { orderId: id, lineId: 'l1', sku: 'SKU-1', quantity: 2, unitPriceCents: '1250' }],
    ['AddOrderLine', { orderId: id, lineId: 'l2', sku: 'SKU-2', quantity: 1, unitPriceCents: '99' }],
    ['RemoveOrderLine', { orderId: id, lineId: 'l2' }],
    ['AuthorizePayment', { orderId: id, commandId: `${id}-auth`, amountCents: '2500', currency: 'EUR' }],
    ['CapturePayment', { orderId: id, commandId: `${id}-cap`, amountCents: '2500' }],
    ['UpdateShippingAddress', { orderId: id, shippingAddress: address }],
    ['ShipOrder', { orderId: id, carrier: 'DHL', trackingNumber: 'TRK-0' }],
    ['MarkPaymentCaptured', { orderId: id, amountCents: '2500' }],
    ['ShipOrder', { orderId: id, carrier: 'DHL', trackingNumber: 'TRK-1', expectedVersion: '3' }],
    ['CancelOrder', { orderId: id, reason: 'too late' }],
    ['PlaceOrder', placeOrder(id, { commandId: `${id}-place` })],
    ['ShipOrder', { orderId: id, carrier: 'DHL', trackingNumber: 'TRK-2', expectedVersion: '1' }],
    ['RemoveOrderLine', { orderId: id, lineId: 'nope' }],
    ['CapturePayment', { orderId: id, commandId: `${id}-cap-bad`, amountCents: '-1' }],
  ];
}

/** Results with the order id and the clock taken out, so two orders' lives can be compared. */
async function runScenario(client: Clients, id: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const timeless = (data: string) => Object.fromEntries(Object.entries(JSON.parse(data) as Record<string, unknown>).filter(([k]) => !k.endsWith('At')));
  for (const [method, request] of scenario(id)) {
    const r = await client.attempt(method, request, { metadata: { 'x-correlation-id': `corr-${id}` } });
    const result = 'ok' in r ? { ...r.ok, events: r.ok.events.map((e) => ({ ...e, data: timeless(e.data), position: undefined, recordedAt: undefined })) } : { error: r.error };
    out.push(JSON.parse(JSON.stringify(result).replaceAll(id, '<id>')));
  }
  return out;
}

beforeAll(async () => {
  const dbs = await Promise.all(['sw_ring', 'sw_s0', 'sw_s1', 'sw_s2', 'sw_s3'].map((p) => createTestDatabase(p)));
  ringDb = dbs[0]!;
  ringStore = new PgRingStore({ connectionString: ringDb.url });
  await ringStore.migrate();
  // Shards start before any ring exists (they own nothing yet) and hear of it by notification.
  const procs = await Promise.all(dbs.slice(1).map((db, k) => startShard(`shard-${k}`, db)));
  shards = procs.map((proc, k) => ({
    id: `shard-${k}`,
    db: dbs[k + 1]!,
    sql: new pg.Pool({ connectionString: dbs[k + 1]!.url, max: 2 }),
    proc,
    client: connect(proc.address),
  }));
  live = shards.slice(0, 3);
  spare = shards[3]!;
  ring1 = await ringStore.initIfEmpty({ epoch: 1, shards: live.map((s) => ({ id: s.id, address: s.proc.address })) });
  router = await startRouter();
  routerClient = connect(router.address);
  for (const s of live) await until(async () => (await fenceOf(s)) === 1, 10_000);
}, 120_000);

afterAll(async () => {
  routerClient?.close();
  for (const s of shards ?? []) s.client.close();
  await Promise.all(processes.map((p) => p.stop()));
  for (const s of shards ?? []) await s.sql.end();
  await ringStore?.close();
  await Promise.all([ringDb, ...(shards ?? []).map((s) => s.db)].filter(Boolean).map((db) => db.drop()));
});

describe('a router in front of three shard processes', () => {
  it('serves an order through the router exactly as the owning shard serves it directly', async () => {
    const view = new RingView(ring1);
    const [viaRouter, direct] = ['life-a', 'life-b'];
    const owner = shardById(view.ownerOf(direct).id);

    const routed = await runScenario(routerClient, viaRouter);
    const straight = await runScenario(owner.client, direct);
    expect(routed).toEqual(straight);
    // The refusals travel back with their codes and ErrorInfo, unchanged.
    const codes = routed.map((r) => ((r as { error?: RpcStatus }).error ? `${(r as { error: RpcStatus }).error.reason}` : 'OK'));
    // The first ShipOrder comes before the header was told of the capture: refused by its rule.
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'BUSINESS_RULE', 'OK', 'OK', 'BUSINESS_RULE', 'OK', 'VERSION_CONFLICT', 'BUSINESS_RULE', 'VALIDATION']);

    // ReadStream through the router gives the owner's events, byte for byte, with the caller's metadata recorded.
    const routedOwner = shardById(view.ownerOf(viaRouter).id);
    for (const type of ['order-header', 'order-lines', 'order-payment']) {
      const through = await routerClient.readStream(type, viaRouter);
      expect(through.length).toBeGreaterThan(0);
      expect(through).toEqual(await routedOwner.client.readStream(type, viaRouter));
    }
    const header = await routerClient.readStream('order-header', viaRouter);
    expect(header[0]!.metadata).toMatchObject({ command_id: `${viaRouter}-place`, correlation_id: `corr-${viaRouter}` });
  });

  it('spreads orders over every shard, and each shard database holds only the streams the ring gives it', async () => {
    const ids = Array.from({ length: 90 }, (_, i) => `spread-${i}`);
    await Promise.all(
      ids.map(async (id) => {
        await routerClient.call('PlaceOrder', placeOrder(id));
        await routerClient.call('AddOrderLine', { orderId: id, lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '100' });
      }),
    );
    const view = new RingView(ring1);
    let spreadStreams = 0;
    for (const s of live) {
      const rows = await streamIdsOf(s);
      for (const r of rows) expect(view.ownerOf(r.aggregate_id).id, r.stream_id).toBe(s.id);
      const mine = rows.filter((r) => r.aggregate_id.startsWith('spread-')).length;
      expect(mine, `${s.id} holds some of the orders`).toBeGreaterThan(0);
      spreadStreams += mine;
    }
    expect(spreadStreams).toBe(2 * ids.length);
  });

  it('has each order readable from exactly one shard; every other shard answers WRONG_SHARD with its epoch', async () => {
    // The ring as an outside client sees it.
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      await cli(['ring', 'show', '--json'], { RING_DATABASE_URL: ringDb.url });
    } finally {
      log.mockRestore();
    }
    const shown = JSON.parse(printed.join('')) as RingDocument;
    expect(shown).toEqual({ epoch: 1, shards: ring1.shards.map((s) => ({ id: s.id, address: s.address })) });

    const view = new RingView(shown);
    for (const id of ['spread-1', 'spread-2', 'spread-3', 'spread-4']) {
      const owner = view.ownerOf(id).id;
      for (const s of live) {
        if (s.id === owner) {
          expect(await s.client.readStream('order-header', id)).toHaveLength(1);
          continue;
        }
        for (const attempt of [
          s.client.readStream('order-header', id).then(
            () => undefined,
            (e: { status: RpcStatus }) => e.status,
          ),
          s.client.attempt('UpdateShippingAddress', { orderId: id, shippingAddress: address }).then((r) => ('error' in r ? r.error : undefined)),
        ]) {
          const status = await attempt;
          expect(status).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'WRONG_SHARD', metadata: { epoch: '1' } });
        }
      }
    }
  });

  it('answers request bytes that are not a protobuf message with INVALID_ARGUMENT VALIDATION', async () => {
    const raw = new grpc.Client(router.address, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          '/shardwrite.v1.OrderService/PlaceOrder',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0x09, 0x61]),
          (e) => resolve(e),
        ),
      );
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      const { statusOf } = await import('../../src/grpc/status.js');
      expect(statusOf(err!).reason).toBe('VALIDATION');
    } finally {
      raw.close();
    }
  });

  it('reports SERVING on grpc.health.v1, lists its services through reflection, and counts requests per shard', async () => {
    const healthApi = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const health = new healthApi.grpc.health.v1.Health(router.address, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        (health as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
      );
    try {
      expect(await check('')).toBe('SERVING');
      expect(await check('shardwrite.v1.OrderService')).toBe('SERVING');
    } finally {
      health.close();
    }

    const require = createRequire(import.meta.url);
    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const reflectionApi = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const reflection = new reflectionApi.grpc.reflection.v1.ServerReflection(router.address, grpc.credentials.createInsecure());
    try {
      const stream = (reflection as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }> }).ServerReflectionInfo();
      const response = new Promise<{ list_services_response?: { service: { name: string }[] } }>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      stream.write({ list_services: '' });
      const names = (await response).list_services_response?.service.map((s) => s.name) ?? [];
      stream.end();
      expect(names).toEqual(expect.arrayContaining(['shardwrite.v1.OrderService', 'shardwrite.v1.EventStoreService']));
    } finally {
      reflection.close();
    }

    for (const s of live) {
      expect(await metric(router, new RegExp(`^shardwrite_router_requests_total\\{.*shard="${s.id}".*code="OK"|^shardwrite_router_requests_total\\{.*code="OK".*shard="${s.id}"`))).toBeGreaterThan(0);
      expect(await metric(router, new RegExp(`^shardwrite_router_breaker_state\\{shard="${s.id}"\\}`))).toBe(0);
    }
  });

  it('fails only a killed shard’s orders, fast, and serves them again once the shard is back, without a router restart', async () => {
    const view = new RingView(ring1);
    const victim = live[2]!;
    const theirs = idsWhere('spread', 6, (id) => view.ownerOf(id).id === victim.id);
    const others = idsWhere('spread', 6, (id) => view.ownerOf(id).id !== victim.id);
    const deadlineMs = 5000;
    const update = (id: string) => {
      const started = performance.now();
      return routerClient.attempt('UpdateShippingAddress', { orderId: id, shippingAddress: address }, { deadlineMs }).then((r) => ({ r, ms: performance.now() - started }));
    };

    victim.proc.signal('SIGKILL');
    await victim.proc.exited;
    for (let round = 0; round < 4; round++) {
      const [down, up] = await Promise.all([Promise.all(theirs.map(update)), Promise.all(others.map(update))]);
      for (const { r, ms } of down) {
        expect('error' in r && r.error).toMatchObject({ code: grpc.status.UNAVAILABLE, reason: 'SHARD_UNAVAILABLE' });
        // Fast: well before the deadline (a generous bound, not a speed target).
        expect(ms).toBeLessThan(deadlineMs / 2);
      }
      for (const { r } of up) expect(r).toHaveProperty('ok');
    }
    // Its breaker opened; the others' stayed closed.
    await expect.poll(() => metric(router, /^shardwrite_router_breaker_state\{shard="shard-2"\}/), { timeout: 3000 }).toBe(2);
    expect(await metric(router, /^shardwrite_router_breaker_state\{shard="shard-0"\}/)).toBe(0);

    // Back on the same address, same database.
    victim.proc = await startShard(victim.id, victim.db, { GRPC_ADDRESS: victim.proc.address });
    victim.client.close();
    victim.client = connect(victim.proc.address);
    await expect.poll(async () => (await Promise.all(theirs.map(update))).every(({ r }) => 'ok' in r), { timeout: 20_000, interval: 200 }).toBe(true);
    expect(router.child.exitCode).toBeNull();
    expect(await metric(router, /^shardwrite_router_breaker_state\{shard="shard-2"\}/)).toBe(0);
  });

  it('a router holding a stale ring learns the new epoch from a WRONG_SHARD reply and retries once, for calls and streams', async () => {
    // These routers neither listen nor poll: only refusals can teach them.
    const [stale, staleStreams] = await Promise.all([0, 1].map(() => startRouter({ RING_NOTIFY: 'off', RING_POLL_MS: '0' })));
    const staleClient = connect(stale!.address);
    const staleStreamClient = connect(staleStreams!.address);
    const retries = (p: ServiceProcess) => metric(p, /^shardwrite_router_wrong_shard_retries_total\{outcome="ok"\}/);
    try {
      for (const c of [staleClient, staleStreamClient]) {
        await expect.poll(() => c.attempt('PlaceOrder', placeOrder('stale-warmup')).then((r) => 'ok' in r || r.error.reason === 'BUSINESS_RULE'), { timeout: 10_000 }).toBe(true);
      }

      // A fourth shard joins: epoch 2. Every shard hears of it (and raises its fence); the stale routers do not.
      const ring2: RingDocument = { epoch: 2, shards: [...ring1.shards, { id: spare.id, address: spare.proc.address }] };
      await ringStore.publish(ring2, 1);
      for (const s of shards) await expect.poll(() => fenceOf(s), { timeout: 10_000 }).toBe(2);

      const before = new RingView(ring1);
      const after = new RingView(ring2);
      const [moved, movedToo] = idsWhere('joined', 2, (id) => after.ownerOf(id).id === spare.id);
      const oldOwner = shardById(before.ownerOf(moved!).id);

      const placed = await staleClient.call('PlaceOrder', placeOrder(moved!));
      expect(placed.version).toBe('1');
      expect((await streamIdsOf(spare)).map((r) => r.aggregate_id)).toContain(moved);
      expect((await streamIdsOf(oldOwner)).map((r) => r.aggregate_id)).not.toContain(moved);
      expect(await retries(stale!)).toBe(1);
      expect(await metric(stale!, /^shardwrite_router_ring_epoch /)).toBe(2);

      // Corrected once, it routes the next moved order straight to its owner.
      await staleClient.call('PlaceOrder', placeOrder(movedToo!));
      expect(await retries(stale!)).toBe(1);

      // A stream is retried the same way (WRONG_SHARD comes before any message).
      const events = await staleStreamClient.readStream('order-header', moved!);
      expect(events.map((e) => e.type)).toEqual(['OrderPlaced']);
      expect(await retries(staleStreams!)).toBe(1);

      // The listening router moved on by itself.
      await expect.poll(() => metric(router, /^shardwrite_router_ring_epoch /), { timeout: 5000 }).toBe(2);
    } finally {
      staleClient.close();
      staleStreamClient.close();
      await Promise.all([stale!.stop(), staleStreams!.stop()]);
    }
  });

  it('a paused old incarnation of a shard cannot append after the ring moved on: the store fence refuses it', async () => {
    const current = (await ringStore.current())!;
    const view = new RingView(current);
    const target = shardById('shard-1');
    const [orderId] = idsWhere('fenced', 1, (id) => view.ownerOf(id).id === target.id);
    // An older process for shard-1 on shard-1's database, deaf to ring changes (no LISTEN, no polling).
    const old = await startShard(target.id, target.db, { RING_NOTIFY: 'off', RING_POLL_MS: '0' });
    const oldClient = connect(old.address);
    try {
      old.signal('SIGSTOP');
      await ringStore.publish({ epoch: current.epoch + 1, shards: current.shards }, current.epoch);
      // The live shard-1 hears of the new epoch and fences its database at it.
      await expect.poll(() => fenceOf(target), { timeout: 10_000 }).toBe(current.epoch + 1);
      old.signal('SIGCONT');

      // The old process still believes it owns the order at the old epoch; the append transaction says no.
      const r = await oldClient.attempt('PlaceOrder', placeOrder(orderId!), { deadlineMs: 10_000 });
      expect('error' in r && r.error).toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        reason: 'WRONG_SHARD',
        metadata: { epoch: String(current.epoch + 1) },
      });
      expect('error' in r && r.error.message).toMatch(/fenced/);
      expect((await streamIdsOf(target)).map((s) => s.aggregate_id)).not.toContain(orderId);

      // The live owner takes the same order through the router.
      expect((await routerClient.call('PlaceOrder', placeOrder(orderId!))).version).toBe('1');
    } finally {
      oldClient.close();
      await old.stop();
    }
  });
});

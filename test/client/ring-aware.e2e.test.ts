/**
 * The ring-aware client against real processes: it reads the ring from a
 * router (RingService), sends each command straight to its owner shard, and
 * stays exactly-once while a shard joins the ring (its ledger proved against
 * every store), after a refusal from a shard that no longer owns an
 * aggregate (WRONG_SHARD: the client refreshes its ring and resends), and when
 * a shard cannot be reached or is killed (its commands go through the router).
 *
 * The tests share one cluster and run in order: shard-3 joins at epoch 2.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringCommand } from '../../cli/ring.js';
import { CommandFailedError, ConnectionLostError, createClient, type CommandResult, type ShardwriteClient } from '../../src/client/index.js';
import { loadApi } from '../../src/grpc/proto.js';
import type { RpcStatus } from '../../src/grpc/status.js';
import type { Ring__Output } from '../../src/generated/shardwrite/v1/Ring.js';
import { RING_HASHING, RingView } from '../../src/ring/index.js';
import { checkStores } from '../support/checker.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { placeOrder } from '../support/grpc.js';
import { MOVING_LOAD_DEADLINE_MS, startLoad, summaryLine, type LoadMethod } from '../support/ledger.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import type { InventoryServiceDefinition } from '../../src/generated/shardwrite/v1/InventoryService.js';

let cluster: Cluster;
/** A second router that learns new rings only when asked (no notifications, no polling to speak of). */
let laggingRouter: ServiceProcess;
/** A ring-aware client of the lagging router, holding epoch 1 while the ring moves on. */
let stale: ShardwriteClient;

const api = loadApi();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Until every shard's connection is up, a ring-aware client sends through the router: wait for all of them. */
async function warmUp(client: ShardwriteClient, prefix: string, view: RingView): Promise<void> {
  const owners = new Set(view.shards.map((s) => s.id));
  const deadline = Date.now() + 15_000;
  for (let i = 0; owners.size > 0 && Date.now() < deadline; i++) {
    const id = `${prefix}-${i}`;
    const before = client.routing!.direct;
    await client.placeOrder(placeOrder(id));
    if (client.routing!.direct > before) owners.delete(view.ownerOf(id).id);
    else await sleep(20);
  }
  expect([...owners]).toEqual([]);
}

function ringOf(address: string, method: 'getRing' | 'watchRing'): Promise<Ring__Output> {
  const stub = new api.shardwrite.v1.RingService(address, grpc.credentials.createInsecure());
  return new Promise<Ring__Output>((resolve, reject) => {
    if (method === 'getRing') {
      stub.getRing({ minEpoch: '0' }, (err, ring) => (err ? reject(err) : resolve(ring!)));
      return;
    }
    const call = stub.watchRing({});
    call.on('data', (ring: Ring__Output) => {
      resolve(ring);
      call.cancel();
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
  }).finally(() => stub.close());
}

type Send = (client: ShardwriteClient, request: never, options: { timeoutMs: number }) => Promise<CommandResult>;
const SEND: Record<LoadMethod, Send> = {
  PlaceOrder: (c, r, o) => c.placeOrder(r, o),
  UpdateShippingAddress: (c, r, o) => c.updateShippingAddress(r, o),
  AddOrderLine: (c, r, o) => c.addOrderLine(r, o),
  AddOrderLines: (c, r, o) => c.addOrderLines(r, o),
  AuthorizePayment: (c, r, o) => c.authorizePayment(r, o),
  ReceiveStock: (c, r, o) => c.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService').ReceiveStock(r, o),
};

/** The ledger's attempt through ring-aware clients (client `i % clients.length`). */
function viaClients(clients: readonly ShardwriteClient[]) {
  return async (i: number, method: LoadMethod, request: object, deadlineMs: number): Promise<{ ok: CommandResult } | { status: RpcStatus }> => {
    try {
      return { ok: await SEND[method](clients[i % clients.length]!, request as never, { timeoutMs: deadlineMs }) };
    } catch (err) {
      if (err instanceof CommandFailedError) return { status: err.status };
      if (err instanceof ConnectionLostError) return { status: err.cause };
      throw err;
    }
  };
}

beforeAll(async () => {
  cluster = await startCluster({ shards: 3, spares: 1 });
  laggingRouter = await startProcess('router/main.ts', {
    GRPC_ADDRESS: '127.0.0.1:0',
    RING_DATABASE_URL: cluster.ringUrl,
    RING_NOTIFY: 'off',
    RING_POLL_MS: '3600000',
    LOG_LEVEL: 'warn',
  });
  stale = createClient(laggingRouter.address, { ringAware: true });
  await until('the first ring', () => stale.routing!.epoch === 1);
  await warmUp(stale, 'stale-warm', new RingView(cluster.ring));
}, 120_000);

afterAll(async () => {
  stale?.close();
  await laggingRouter?.stop(5000);
  await cluster?.close();
});

describe('RingService', () => {
  it('serves the ring, with each shard’s address, weight and the hashing, at the router and at a shard', async () => {
    const expected = {
      epoch: '1',
      shards: cluster.ring.shards.map((s) => ({ id: s.id, address: s.address, weight: 1 })),
      hashing: RING_HASHING,
    };
    for (const address of [cluster.routerAddress, cluster.shards[0]!.address]) {
      expect(await ringOf(address, 'watchRing')).toEqual(expected);
      expect(await ringOf(address, 'getRing')).toEqual(expected);
    }
  });
});

describe('a ring-aware client', () => {
  it('sends each command straight to the shard that owns it, and the result is the same as through the router', async () => {
    const client = createClient(cluster.routerAddress, { ringAware: true });
    try {
      await until('the first ring', () => client.routing!.epoch === 1);
      const view = new RingView(cluster.ring);
      await warmUp(client, 'direct-warm', view);
      const before = { ...client.routing! };
      const ids = Array.from({ length: 60 }, (_, i) => `direct-${i}`);
      const results = await Promise.all(ids.map((id) => client.placeOrder(placeOrder(id, { commandId: `place-${id}` }) as never)));
      expect(results.every((r) => r.version === '1' && !r.duplicate)).toBe(true);
      expect(client.routing!.direct - before.direct).toBe(ids.length);
      expect(client.routing!.viaRouter).toBe(before.viaRouter);
      // Each order is on its owner's store, and a retry with the same command id is a duplicate.
      for (const id of ids.slice(0, 10)) {
        const owner = cluster.shard(view.ownerOf(id).id);
        const rows = await owner.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id = 'order-header-' || $1", [id]);
        expect(rows.rows[0].n).toBe(1);
      }
      expect(await client.placeOrder(placeOrder(ids[0]!, { commandId: `place-${ids[0]}` }) as never)).toMatchObject({ duplicate: true });
    } finally {
      client.close();
    }
  });

  it('stays exactly-once while a shard joins the ring: every acknowledged command committed once, nothing lost', async () => {
    const clients = Array.from({ length: 4 }, () => createClient(cluster.routerAddress, { ringAware: true }));
    try {
      for (const [i, c] of clients.entries()) {
        await until('the first ring', () => c.routing!.epoch === 1);
        await warmUp(c, `warm-j${i}`, new RingView(cluster.ring));
      }
      const run = startLoad({
        target: cluster.routerAddress,
        call: viaClients(clients),
        prefix: 'join',
        clients: 32,
        ordersPerClient: 4,
        deadlineMs: MOVING_LOAD_DEADLINE_MS,
        // What a caller may hear while streams move: the router's final answers after the client's own resends.
        expect: ['UNAVAILABLE/STREAM_MOVING', 'FAILED_PRECONDITION/WRONG_SHARD'],
      });
      await sleep(1500);
      const spare = cluster.shard('shard-3');
      const out = { tty: false, line: () => {}, error: (text: string) => console.error(text) };
      expect(await ringCommand(['add', 'shard-3', '--address', spare.address], { RING_DATABASE_URL: cluster.ringUrl }, out)).toBe(0);
      await until('the new ring', () => clients.every((c) => c.routing!.epoch === 2));
      await sleep(1500);
      const ledger = await run.stop();
      const check = await checkStores(cluster.stores(), ledger);
      const routing = clients.map((c) => c.routing!);
      const sum = (k: 'direct' | 'viaRouter' | 'wrongShard' | 'moving') => routing.reduce((n, r) => n + r[k], 0);
      console.log(summaryLine('ring-aware client, shard-3 joins', ledger, check, { direct: sum('direct'), viaRouter: sum('viaRouter'), wrongShard: sum('wrongShard'), moving: sum('moving') }));
      expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
      expect(check.lost).toBe(0);
      expect(check.duplicated).toBe(0);
      expect(ledger.states().acked).toBeGreaterThan(100);
      // Most commands went straight to their owners, before and after the change.
      expect(sum('direct')).toBeGreaterThan(sum('viaRouter'));
      // Something now lives on the new shard, written there directly.
      const moved = await spare.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id LIKE '%-join-%'");
      expect(moved.rows[0].n).toBeGreaterThan(0);
      expect(cluster.dead()).toEqual([]);
    } finally {
      for (const c of clients) c.close();
    }
  }, 120_000);

  it('refreshes its ring when a shard answers WRONG_SHARD and resends to the new owner', async () => {
    // The lagging router still holds epoch 1, so its client does too.
    expect(stale.routing!.epoch).toBe(1);
    const now = new RingView((await cluster.ringStore.current())!);
    const old = new RingView(cluster.ring);
    const ids = Array.from({ length: 400 }, (_, i) => `refused-${i}`)
      .filter((id) => now.ownerOf(id).id === 'shard-3')
      .slice(0, 5);
    expect(ids.length).toBe(5);
    const before = { ...stale.routing! };
    // The first goes to its epoch-1 owner, which refuses it; the client fetches epoch 2 and resends to shard-3.
    const first = await stale.placeOrder(placeOrder(ids[0]!));
    expect(first).toMatchObject({ version: '1' });
    expect(stale.routing!.wrongShard).toBe(before.wrongShard + 1);
    expect(stale.routing!.epoch).toBe(2);
    expect(old.ownerOf(ids[0]!).id).not.toBe('shard-3');
    // Once shard-3's connection is up, the others go straight to it, with no refusal.
    await sleep(500);
    const mid = { ...stale.routing! };
    for (const id of ids.slice(1)) expect(await stale.placeOrder(placeOrder(id) as never)).toMatchObject({ version: '1' });
    expect(stale.routing!.wrongShard).toBe(mid.wrongShard);
    const rows = await cluster.shard('shard-3').sql.query("SELECT count(DISTINCT stream_id)::int AS n FROM events WHERE stream_id LIKE 'order-header-refused-%'");
    expect(rows.rows[0].n).toBeGreaterThanOrEqual(ids.length);
  }, 30_000);

  it('sends through the router the commands of a shard it cannot reach, and goes straight again once it can', async () => {
    const target = cluster.shard('shard-0');
    const proxy: TcpProxy = await startTcpProxy(target.address);
    const client = createClient(cluster.routerAddress, { ringAware: { shardAddress: (s) => (s.id === 'shard-0' ? proxy.address : s.address) } });
    try {
      await until('the current ring', () => client.routing!.epoch === 2);
      const view = new RingView((await cluster.ringStore.current())!);
      await warmUp(client, 'reach-warm', view);
      const ids = Array.from({ length: 400 }, (_, i) => `reach-${i}`)
        .filter((id) => view.ownerOf(id).id === 'shard-0')
        .slice(0, 10);
      proxy.cut();
      await sleep(300);
      const before = { ...client.routing! };
      for (const id of ids) expect(await client.placeOrder(placeOrder(id) as never)).toMatchObject({ version: '1' });
      expect(client.routing!.viaRouter - before.viaRouter).toBe(ids.length);
      expect(client.routing!.direct).toBe(before.direct);
      proxy.resume();
      const after = { ...client.routing! };
      await until('shard-0 again', () => {
        void client.cancelOrder({ orderId: ids[0]!, reason: 'probe' }).catch(() => {});
        return client.routing!.direct > after.direct;
      });
    } finally {
      client.close();
      await proxy.close();
    }
  }, 60_000);

  it('loses and duplicates nothing when a shard is killed under load: its commands go through the router until it is back', async () => {
    const clients = Array.from({ length: 2 }, () => createClient(cluster.routerAddress, { ringAware: true }));
    const victim = cluster.shard('shard-1');
    const view = new RingView((await cluster.ringStore.current())!);
    try {
      for (const [i, c] of clients.entries()) {
        await until('the current ring', () => c.routing!.epoch === 2);
        await warmUp(c, `warm-k${i}`, view);
      }
      const run = startLoad({
        target: cluster.routerAddress,
        call: viaClients(clients),
        prefix: 'kill',
        clients: 16,
        ordersPerClient: 4,
        deadlineMs: 3000,
        ownerOf: (id) => view.ownerOf(id).id,
        // The killed shard's commands: cut streams and its unreachable owner (through the router), nothing else.
        expect: [
          { error: 'UNAVAILABLE', when: (command) => command.shard === victim.id },
          { error: 'DEADLINE_EXCEEDED', when: (command) => command.shard === victim.id },
        ],
      });
      await sleep(1500);
      const before = clients.map((c) => ({ ...c.routing! }));
      victim.process.signal('SIGKILL');
      await sleep(1500);
      await victim.restart();
      const restartedAt = Date.now();
      await sleep(3000);
      const ledger = await run.stop();
      const check = await checkStores(cluster.stores(), ledger);
      const viaRouter = clients.reduce((n, c, i) => n + c.routing!.viaRouter - before[i]!.viaRouter, 0);
      console.log(summaryLine('ring-aware client, shard-1 killed', ledger, check, { viaRouter }));
      expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
      expect(check.lost).toBe(0);
      expect(check.duplicated).toBe(0);
      expect(viaRouter).toBeGreaterThan(0);
      // The shard's aggregates took commands again once it was back.
      expect(ledger.acks.filter((a) => view.ownerOf(a.orderId).id === victim.id && a.at > restartedAt).length).toBeGreaterThan(0);
    } finally {
      for (const c of clients) c.close();
    }
  }, 120_000);
});

describe('draining', () => {
  it('a router or a shard that drains ends the ring watches it serves with UNAVAILABLE and exits 0 without waiting for them', async () => {
    const watched = (address: string) => {
      const stub = new api.shardwrite.v1.RingService(address, grpc.credentials.createInsecure());
      const call = stub.watchRing({});
      const rings: string[] = [];
      call.on('data', (r: Ring__Output) => rings.push(r.epoch));
      const ended = new Promise<grpc.status>((resolve) => call.on('status', (s: grpc.StatusObject) => resolve(s.code)));
      call.on('error', () => {});
      return { rings, ended, close: () => stub.close() };
    };
    const atRouter = watched(laggingRouter.address);
    const atShard = watched(cluster.shard('shard-2').address);
    try {
      await until('both watches', () => atRouter.rings.length > 0 && atShard.rings.length > 0);
      for (const [process, watch] of [
        [laggingRouter, atRouter],
        [cluster.shard('shard-2').process, atShard],
      ] as const) {
        const t0 = Date.now();
        expect(await process.stop(9000)).toBe(0);
        expect(Date.now() - t0).toBeLessThan(8000);
        expect(await watch.ended).toBe(grpc.status.UNAVAILABLE);
      }
    } finally {
      atRouter.close();
      atShard.close();
    }
  }, 30_000);
});

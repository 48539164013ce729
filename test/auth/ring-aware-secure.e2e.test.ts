/**
 * Ring-aware clients in a secure cluster (TLS on every hop, JWT bearer
 * tokens): reading the ring needs credentials and the `read` scope, at the
 * router and at a shard; a shard takes a command straight from a client only
 * with the credentials the router would take, and applies the same scopes and
 * tenant checks — there is no weaker path around the router.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandFailedError, ConnectionLostError, createClient, type ShardwriteClient } from '../../src/client/index.js';
import { clientCredentials } from '../../src/grpc/tls.js';
import { loadApi } from '../../src/grpc/proto.js';
import { RingView } from '../../src/ring/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { placeOrder } from '../support/grpc.js';
import { testKeys } from './keys.js';

let cluster: Cluster;
const tokens: Record<string, string> = {};
const clients: ShardwriteClient[] = [];
const api = loadApi();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const keys = await testKeys();
  tokens.alice = await keys.sign({ sub: 'alice', tenant: 'tenant-a' });
  tokens.bob = await keys.sign({ sub: 'bob', tenant: 'tenant-b' });
  // May command orders but not read: not the ring either.
  tokens.carol = await keys.sign({ sub: 'carol', tenant: 'tenant-a', scope: 'order-header order-lines' });
  cluster = await startCluster({ shards: 2, tls: true, auth: keys.env });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
});

const tls = () => ({ caFile: cluster.tls!.caFile });

function ringAware(token: string | undefined): ShardwriteClient {
  const c = createClient(cluster.routerAddress, { ringAware: true, tls: tls(), ...(token ? { metadata: { authorization: `Bearer ${token}` } } : {}) });
  clients.push(c);
  return c;
}

/** GetRing at `address`: the epoch, or the refusal's code. */
function getRing(address: string, token: string | undefined): Promise<string> {
  const stub = new api.shardwrite.v1.RingService(address, clientCredentials(tls()));
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise<string>((resolve) => stub.getRing({}, md, (err, ring) => resolve(err ? grpc.status[err.code] : `epoch ${ring!.epoch}`))).finally(() => stub.close());
}

async function until(what: string, ok: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (err: unknown) => (err instanceof CommandFailedError ? grpc.status[err.code] : err instanceof ConnectionLostError ? `stream: ${grpc.status[err.cause.code]}` : String(err)),
  );

describe('a shard in secure mode', () => {
  it('says so at start-up when its database login may rewrite events (here the server superuser), naming the role to use', () => {
    for (const s of cluster.shards) expect(s.process.output()).toMatch(/database login may UPDATE and DELETE events: run shards as a login IN ROLE shardwrite_shard/);
  });
});

describe('the ring in a secure cluster', () => {
  it('is read only with credentials and the read scope, at the router and at a shard', async () => {
    for (const address of [cluster.routerAddress, cluster.shards[1]!.address]) {
      expect(await getRing(address, undefined)).toBe('UNAUTHENTICATED');
      expect(await getRing(address, tokens.carol)).toBe('PERMISSION_DENIED');
      expect(await getRing(address, tokens.alice)).toBe('epoch 1');
    }
  });
});

describe('a ring-aware client in a secure cluster', () => {
  it('sends straight to the owner shards over TLS with its token, and the events record who caused them', async () => {
    const alice = ringAware(tokens.alice);
    await until('the ring', () => alice.routing!.epoch === 1);
    const view = new RingView(cluster.ring);
    // Until both shards' connections are up, commands go through the router.
    const owners = new Set(view.shards.map((s) => s.id));
    for (let i = 0; owners.size > 0 && i < 300; i++) {
      const before = alice.routing!.direct;
      await alice.placeOrder(placeOrder(`ra-warm-${i}`));
      if (alice.routing!.direct > before) owners.delete(view.ownerOf(`ra-warm-${i}`).id);
      else await sleep(20);
    }
    expect([...owners]).toEqual([]);
    const before = alice.routing!.direct;
    for (let i = 0; i < 10; i++) await alice.placeOrder(placeOrder(`ra-a-${i}`, { commandId: `ra-a-${i}` }));
    expect(alice.routing!.direct - before).toBe(10);
    const owner = cluster.shard(view.ownerOf('ra-a-0').id);
    const audit = await owner.sql.query("SELECT metadata->>'principal' AS principal, metadata->>'tenant' AS tenant FROM events WHERE stream_id = 'order-header-ra-a-0'");
    expect(audit.rows).toEqual([{ principal: 'alice', tenant: 'tenant-a' }]);
  });

  it('gets from a shard exactly what the router would give: another tenant’s aggregate is NOT_FOUND, a missing scope PERMISSION_DENIED, forged identity headers are ignored', async () => {
    const bob = createClient(cluster.routerAddress, {
      ringAware: true,
      tls: tls(),
      // Claims to be alice of tenant-a in the headers a router puts on its link frames: a shard drops them.
      metadata: { authorization: `Bearer ${tokens.bob}`, 'x-shardwrite-principal': 'alice', 'x-shardwrite-tenant': 'tenant-a', 'x-shardwrite-scopes': '*' },
    });
    clients.push(bob);
    const viaRouter = createClient(cluster.routerAddress, { tls: tls(), metadata: { authorization: `Bearer ${tokens.bob}` } });
    clients.push(viaRouter);
    await until('the ring', () => bob.routing!.epoch === 1);
    await sleep(500);
    for (let i = 0; i < 20 && bob.routing!.direct === 0; i++) {
      await bob.placeOrder(placeOrder(`rb-warm-${i}`));
      await sleep(50);
    }
    const before = bob.routing!.direct;
    expect(await outcome(bob.cancelOrder({ orderId: 'ra-a-0', reason: 'not mine' }))).toBe('NOT_FOUND');
    expect(await outcome(viaRouter.cancelOrder({ orderId: 'ra-a-0', reason: 'not mine' }))).toBe('NOT_FOUND');
    expect(bob.routing!.direct).toBe(before + 1);
    const carol = ringAware(tokens.carol);
    // No read scope: no ring, so every command goes through the router — and is authorized the same.
    expect(await outcome(carol.placeOrder(placeOrder('rc-1') as never))).toBe('OK');
    expect(await outcome(carol.authorizePayment({ orderId: 'rc-1', commandId: 'rc-pay', amountCents: '1', currency: 'EUR' }))).toBe('PERMISSION_DENIED');
    expect(carol.routing).toMatchObject({ epoch: 0, direct: 0 });
  });

  it('without credentials gets nothing, through the router or around it', async () => {
    const nobody = ringAware(undefined);
    expect(await outcome(nobody.placeOrder(placeOrder('rn-1') as never))).toBe('stream: UNAUTHENTICATED');
    expect(nobody.routing!.epoch).toBe(0);
    // Straight at a shard, with the plain client: the stream itself is refused.
    const direct = createClient(cluster.shards[0]!.address, { tls: tls() });
    clients.push(direct);
    expect(await outcome(direct.placeOrder(placeOrder('rn-2') as never))).toBe('stream: UNAUTHENTICATED');
    for (const s of cluster.shards) expect((await s.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id LIKE 'order-header-rn-%'")).rows[0].n).toBe(0);
  });
});

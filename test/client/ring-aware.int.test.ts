/**
 * The ring-aware client's decisions against scripted in-process servers (a
 * "router" serving RingService and CommandStreamService, and "shards" serving
 * CommandStreamService), each answer naming who gave it: which rings it
 * routes by, and how it follows WRONG_SHARD and STREAM_MOVING answers. The
 * real services are tested end to end in ring-aware.e2e.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type ShardwriteClient } from '../../src/client/index.js';
import { StreamMovingError, WrongShardError } from '../../src/errors.js';
import { bindInsecure } from '../../src/grpc/server.js';
import { loadApi } from '../../src/grpc/proto.js';
import { toRpcStatus, toStatusMessage } from '../../src/grpc/status.js';
import type { Ring } from '../../src/generated/shardwrite/v1/Ring.js';
import type { StreamedCommand__Output } from '../../src/generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome } from '../../src/generated/shardwrite/v1/StreamedOutcome.js';
import { RING_HASHING } from '../../src/ring/index.js';

const api = loadApi();
const open: { close(): void }[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

type Answer = (command: StreamedCommand__Output, served: number) => Omit<StreamedOutcome, 'requestId'>;
const ok =
  (by: string): Answer =>
  () => ({ result: { streamId: by, version: '1', events: [], duplicate: false } });

/** Serves CommandStreamService with `answer`; `served` counts the commands it got. */
async function commandServer(answer: Answer, server = new grpc.Server()): Promise<{ address: string; served: () => number; server: grpc.Server }> {
  let served = 0;
  server.addService(api.shardwrite.v1.CommandStreamService.service, {
    Execute: (call: grpc.ServerDuplexStream<StreamedCommand__Output, StreamedOutcome>) => {
      call.on('data', (c: StreamedCommand__Output) => call.write({ requestId: c.requestId, ...answer(c, ++served) }));
      call.on('end', () => call.end());
    },
  });
  const address = await bindInsecure(server, '127.0.0.1:0');
  open.push({ close: () => server.forceShutdown() });
  return { address, served: () => served, server };
}

/** The "router": answers commands itself (`via-router`) and serves the ring it is given; `publish` pushes to watchers unless `quiet`. */
async function router(first: Ring) {
  let current = first;
  const watchers = new Set<grpc.ServerWritableStream<unknown, Ring>>();
  const server = new grpc.Server();
  server.addService(api.shardwrite.v1.RingService.service, {
    WatchRing: (call: grpc.ServerWritableStream<unknown, Ring>) => {
      watchers.add(call);
      call.on('cancelled', () => watchers.delete(call));
      call.write(current);
    },
    GetRing: (_call: grpc.ServerUnaryCall<unknown, Ring>, callback: grpc.sendUnaryData<Ring>) => callback(null, current),
  });
  const commands = await commandServer(ok('via-router'), server);
  return {
    ...commands,
    publish(ring: Ring, quiet = false) {
      current = ring;
      if (!quiet) for (const w of watchers) w.write(ring);
    },
  };
}

const ringOf = (epoch: number, shards: { id: string; address: string }[]): Ring => ({
  epoch: String(epoch),
  shards: shards.map((s) => ({ ...s, weight: 1 })),
  hashing: RING_HASHING,
});

function client(address: string): ShardwriteClient {
  const c = createClient(address, { ringAware: { refreshTimeoutMs: 500 } });
  open.push(c);
  return c;
}

const place = (c: ShardwriteClient, id: string) => c.placeOrder({ orderId: id, customerId: 'c', customerEmail: 'a@b.c' });

async function untilDirect(c: ShardwriteClient): Promise<void> {
  for (let i = 0; i < 100 && c.routing!.direct === 0; i++) {
    await place(c, `warm-${i}`);
    await sleep(20);
  }
  expect(c.routing!.direct).toBeGreaterThan(0);
}

describe('a ring-aware client', () => {
  it('routes by a ring it knows how to hash, straight to the owner', async () => {
    const shard = await commandServer(ok('shard-a'));
    const r = await router(ringOf(1, [{ id: 'shard-a', address: shard.address }]));
    const c = client(r.address);
    await untilDirect(c);
    expect((await place(c, 'o1')).streamId).toBe('shard-a');
    expect(c.routing).toMatchObject({ epoch: 1 });
  });

  it.each([
    ['a hashing it does not know', (ring: Ring): Ring => ({ ...ring, hashing: 'jump-consistent-hash-v9' })],
    ['weights it does not hash by', (ring: Ring): Ring => ({ ...ring, shards: ring.shards!.map((s) => ({ ...s, weight: 2 })) })],
  ])('sends everything through the router when the ring uses %s', async (_, change) => {
    const shard = await commandServer(ok('shard-a'));
    const r = await router(change(ringOf(1, [{ id: 'shard-a', address: shard.address }])));
    const c = client(r.address);
    await sleep(300);
    for (let i = 0; i < 5; i++) expect((await place(c, `o${i}`)).streamId).toBe('via-router');
    expect(c.routing).toMatchObject({ epoch: 0, direct: 0, viaRouter: 5 });
    expect(shard.served()).toBe(0);
  });

  it('after WRONG_SHARD, fetches the newer ring (GetRing) and resends to the owner there', async () => {
    const b = await commandServer(ok('shard-b'));
    const a = await commandServer(() => ({ error: toStatusMessage(toRpcStatus(new WrongShardError(2))) }));
    const r = await router(ringOf(1, [{ id: 'shard-a', address: a.address }]));
    const c = client(r.address);
    await sleep(300);
    // The router's watch does not push epoch 2: only GetRing finds it.
    r.publish(ringOf(2, [{ id: 'shard-b', address: b.address }]), true);
    // Wait for shard-a's connection, so the first command goes to it.
    for (let i = 0; i < 100 && a.served() === 0; i++) {
      await place(c, `probe-${i}`);
      await sleep(20);
    }
    expect(c.routing!.wrongShard).toBeGreaterThan(0);
    expect(c.routing!.epoch).toBe(2);
    await sleep(300);
    expect((await place(c, 'o1')).streamId).toBe('shard-b');
  });

  it('after STREAM_MOVING, waits for the ring that names the new owner and resends there; a refusal that does not settle ends at the router', async () => {
    const b = await commandServer(ok('shard-b'));
    const a = await commandServer(() => ({ error: toStatusMessage(toRpcStatus(new StreamMovingError(2, 50))) }));
    const r = await router(ringOf(1, [{ id: 'shard-a', address: a.address }]));
    const c = client(r.address);
    await untilDirect(c);
    // Every direct try so far was refused (moving): after three, the router answered.
    expect(c.routing!.moving).toBeGreaterThanOrEqual(3);
    expect(c.routing!.viaRouter).toBeGreaterThan(0);
    const before = { ...c.routing! };
    const placed = place(c, 'o-moving');
    await sleep(100);
    r.publish(ringOf(2, [{ id: 'shard-b', address: b.address }]));
    // Refused until the new ring arrives (this GetRing does not wait for it); then shard-b, or the router while its connection comes up.
    expect(['shard-b', 'via-router']).toContain((await placed).streamId);
    expect(c.routing!.moving).toBeGreaterThan(before.moving);
    expect(c.routing!.epoch).toBe(2);
    await sleep(300);
    expect((await place(c, 'o-after')).streamId).toBe('shard-b');
  });
});

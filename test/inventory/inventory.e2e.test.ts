/**
 * The inventory domain end to end, with real processes: a router in front of
 * two shards (and a spare a rebalance adds), each on its own PostgreSQL.
 * Nothing here is inventory-specific in the router, the pipeline or the
 * store: the commands are streamed packed (StreamedCommand's `packed`
 * member) or sent unary, routed by `sku`, snapshotted, and moved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ringCommand } from '../../cli/ring.js';
import { CommandFailedError, createClient, type ShardwriteClient } from '../../src/client/index.js';
import { loadPackageDefinition } from '../../src/grpc/proto.js';
import { statusOf } from '../../src/grpc/status.js';
import { RingView } from '../../src/ring/index.js';
import type { ProtoGrpcType as InventoryGrpc } from '../../src/generated/inventory.js';
import type { InventoryServiceDefinition } from '../../src/generated/shardwrite/v1/InventoryService.js';
import type { CommandResult__Output } from '../../src/generated/shardwrite/v1/CommandResult.js';
import { checkStructure, readStores } from '../support/checker.js';
import { startCluster, type Cluster } from '../support/cluster.js';

let cluster: Cluster;
let client: ShardwriteClient;

beforeAll(async () => {
  // A snapshot after every 5 inventory events, so a short test sees them taken and carried by a move.
  cluster = await startCluster({ shards: 2, spares: 1, shardEnv: { SNAPSHOT_INTERVALS: 'inventory=5' } });
  client = createClient(cluster.routerAddress);
}, 120_000);

afterAll(async () => {
  client?.close();
  await cluster?.close();
});

const inventory = () => client.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService');

/** `CODE/REASON` of a refused command, `OK` (or `DUP`) of an applied one. */
async function outcome(p: Promise<CommandResult__Output>): Promise<string> {
  try {
    return (await p).duplicate ? 'DUP' : 'OK';
  } catch (err) {
    if (err instanceof CommandFailedError) return `${grpc.status[err.code]}/${err.reason ?? ''}`;
    throw err;
  }
}

async function eventsOf(streamId: string): Promise<number> {
  let n = 0;
  for (const s of cluster.shards) n += Number((await s.sql.query('SELECT count(*) AS n FROM events WHERE stream_id = $1', [streamId])).rows[0].n);
  return n;
}

const SKUS = Array.from({ length: 24 }, (_, i) => `sku-${i}`);

describe('inventory through a router and its shards', () => {
  it('streams packed inventory commands to the shard that owns each SKU', async () => {
    const results = await Promise.all(SKUS.map((sku) => inventory().ReceiveStock({ sku, commandId: `recv-${sku}`, quantity: 3 })));
    for (const [i, r] of results.entries()) expect(r).toMatchObject({ streamId: `inventory-${SKUS[i]}`, version: '1', duplicate: false });
    // Each stream lives on its owner at epoch 1, and both shards own some.
    for (const s of cluster.shards.slice(0, 2)) {
      const rows = (await s.sql.query<{ aggregate_id: string }>("SELECT aggregate_id FROM streams WHERE aggregate_type = 'inventory'")).rows;
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(cluster.ownerOf(row.aggregate_id)).toBe(s.id);
    }
  });

  it('never lets a hot SKU go below zero: of 40 concurrent reservations of 10 units, exactly 10 succeed', async () => {
    await inventory().ReceiveStock({ sku: 'hot', commandId: 'recv-hot', quantity: 10 });
    const clients = Array.from({ length: 4 }, () => createClient(cluster.routerAddress));
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          outcome(clients[i % 4]!.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService').ReserveStock({ sku: 'hot', orderId: `o${i}`, quantity: 1 })),
        ),
      );
      expect(answers.filter((a) => a === 'OK')).toHaveLength(10);
      expect(answers.filter((a) => a === 'FAILED_PRECONDITION/BUSINESS_RULE')).toHaveLength(30);
    } finally {
      for (const c of clients) c.close();
    }
    expect(await eventsOf('inventory-hot')).toBe(11);
    // Releasing makes exactly what was reserved available again: one unit, not two.
    const owner = cluster.shard(cluster.ownerOf('hot'));
    const holder = (await owner.sql.query<{ data: { orderId: string } }>("SELECT data FROM events WHERE stream_id = 'inventory-hot' AND type = 'StockReserved' ORDER BY version LIMIT 1")).rows[0]!.data
      .orderId;
    expect(await outcome(inventory().ReleaseReservation({ sku: 'hot', orderId: holder }))).toBe('OK');
    expect(await outcome(inventory().ReleaseReservation({ sku: 'hot', orderId: holder }))).toBe('FAILED_PRECONDITION/BUSINESS_RULE');
    expect(await outcome(inventory().ReserveStock({ sku: 'hot', orderId: 'late', quantity: 2 }))).toBe('FAILED_PRECONDITION/BUSINESS_RULE');
    expect(await outcome(inventory().ReserveStock({ sku: 'hot', orderId: 'late', quantity: 1 }))).toBe('OK');
    expect(await outcome(inventory().ReleaseReservation({ sku: 'hot', orderId: 'never-reserved' }))).toBe('FAILED_PRECONDITION/BUSINESS_RULE');
  });

  it('answers a repeated command id with the original result and appends nothing; a reused one for another request is refused', async () => {
    const first = await inventory().ReceiveStock({ sku: 'idem', commandId: 'recv-idem', quantity: 5 });
    const again = await inventory().ReceiveStock({ sku: 'idem', commandId: 'recv-idem', quantity: 5 });
    expect(again).toMatchObject({ streamId: first.streamId, version: first.version, duplicate: true });
    expect(await outcome(inventory().ReceiveStock({ sku: 'idem', commandId: 'recv-idem', quantity: 6 }))).toBe('FAILED_PRECONDITION/COMMAND_ID_REUSED');
    expect(await eventsOf('inventory-idem')).toBe(1);
  });

  it('refuses bad input with INVALID_ARGUMENT naming every bad field, and an unknown SKU with NOT_FOUND, writing nothing', async () => {
    const refused = await inventory()
      .ReserveStock({ sku: 'bad', orderId: 'not valid', quantity: 0 })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(CommandFailedError);
    expect((refused as CommandFailedError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((refused as CommandFailedError).reason).toBe('VALIDATION');
    expect(await outcome(inventory().ReceiveStock({ sku: 'bad', quantity: 1 }))).toBe('INVALID_ARGUMENT/VALIDATION');
    expect(await outcome(inventory().ReceiveStock({ sku: 'bad', commandId: 'c', quantity: 1_000_001 }))).toBe('INVALID_ARGUMENT/VALIDATION');
    expect(await outcome(inventory().ReserveStock({ sku: 'never-received', orderId: 'o1', quantity: 1 }))).toBe('NOT_FOUND/AGGREGATE_NOT_FOUND');
    expect(await eventsOf('inventory-bad')).toBe(0);
    expect(await eventsOf('inventory-never-received')).toBe(0);
  });

  it('serves the unary InventoryService through the router, with the same statuses', async () => {
    const api = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as InventoryGrpc;
    const unary = new api.shardwrite.v1.InventoryService(cluster.routerAddress, grpc.credentials.createInsecure());
    const call = (method: 'ReceiveStock' | 'ReserveStock', request: object) =>
      new Promise<CommandResult__Output>((resolve, reject) =>
        (unary[method] as (r: object, cb: (e: grpc.ServiceError | null, v?: CommandResult__Output) => void) => void)(request, (err, value) => (err ? reject(err) : resolve(value!))),
      );
    try {
      expect(await call('ReceiveStock', { sku: 'unary', commandId: 'u1', quantity: 2 })).toMatchObject({ streamId: 'inventory-unary', version: '1' });
      expect(await call('ReserveStock', { sku: 'unary', orderId: 'o1', quantity: 2 })).toMatchObject({ version: '2' });
      const err = await call('ReserveStock', { sku: 'unary', orderId: 'o2', quantity: 1 }).catch((e: grpc.ServiceError) => e);
      expect(statusOf(err as grpc.ServiceError)).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'BUSINESS_RULE' });
    } finally {
      unary.close();
    }
  });

  it('snapshots a SKU on its owner once enough events follow the last snapshot', async () => {
    const owner = cluster.shard(cluster.ownerOf('hot'));
    let row: { version: string; state: { onHand: number; reserved: number } } | undefined;
    for (const until = Date.now() + 10_000; !row && Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
      row = (await owner.sql.query("SELECT version::text, state FROM snapshots WHERE stream_id = 'inventory-hot' AND aggregate_type = 'inventory'")).rows[0] as typeof row;
    }
    expect(row, 'no snapshot of inventory-hot').toBeDefined();
    expect(Number(row!.version)).toBeGreaterThanOrEqual(5);
    expect(row!.state.onHand).toBe(10);
    expect(row!.state.reserved).toBeLessThanOrEqual(row!.state.onHand);
  });

  it('moves the SKUs whose owner changes when a shard joins, and keeps deciding them from their history', async () => {
    const spare = cluster.shards[2]!;
    const errors: string[] = [];
    const code = await ringCommand(['add', spare.id, '--address', spare.address], { RING_DATABASE_URL: cluster.ringUrl }, { tty: false, line: () => {}, error: (t) => errors.push(t) });
    expect(code, errors.join('\n')).toBe(0);
    const view = new RingView((await cluster.ringStore.current())!);
    const moved = SKUS.filter((sku) => view.ownerOf(sku).id === spare.id);
    expect(moved.length).toBeGreaterThan(0);
    const onSpare = (await spare.sql.query<{ aggregate_id: string; version: string }>("SELECT aggregate_id, version::text FROM streams WHERE aggregate_type = 'inventory'")).rows;
    expect(
      onSpare
        .map((r) => r.aggregate_id)
        .filter((id) => SKUS.includes(id))
        .sort(),
    ).toEqual([...moved].sort());
    // Each SKU still has exactly its 3 units, wherever it lives now: 3 reserve, a 4th does not.
    for (const sku of SKUS) {
      expect(await outcome(inventory().ReserveStock({ sku, orderId: 'after-move', quantity: 3 })), sku).toBe('OK');
      expect(await outcome(inventory().ReserveStock({ sku, orderId: 'one-more', quantity: 1 })), sku).toBe('FAILED_PRECONDITION/BUSINESS_RULE');
    }
    const snapshot = await readStores(cluster.stores());
    const violations: string[] = [];
    checkStructure(snapshot, violations);
    expect(violations).toEqual([]);
  });
});

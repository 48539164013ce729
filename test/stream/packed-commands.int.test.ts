/**
 * StreamedCommand's `packed` member (a google.protobuf.Any) on a shard: any
 * registered command may be sent packed, with the same outcome as by its own
 * member; a packed message the shard cannot read is INVALID_ARGUMENT and
 * writes nothing, and the typed client's `service` reaches any command service.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { createLogger } from '../../src/observability/logger.js';
import { CommandFailedError, createClient } from '../../src/client/index.js';
import { loadApi, loadPackageDefinition } from '../../src/grpc/proto.js';
import { packedMethods, typeUrlOf } from '../../src/grpc/packed.js';
import type { OrderServiceDefinition } from '../../src/generated/shardwrite/v1/OrderService.js';
import type { StreamedCommand } from '../../src/generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome__Output } from '../../src/generated/shardwrite/v1/StreamedOutcome.js';
import { fromStatusMessage } from '../../src/grpc/status.js';
import { loadProtoRoot } from '../../src/grpc/routing-keys.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { placeOrder } from '../support/grpc.js';
import { expectThrow } from '../support/expect-error.js';

let db: TestDatabase;
let shard: RunningShard;
let sql: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off' });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
});

afterAll(async () => {
  await sql?.end();
  await shard?.close();
  await db?.drop();
});

const definition = loadPackageDefinition();
const serialize = (rpc: string, request: object) =>
  packedMethods(definition, rpc.split('/')[0]!)
    .find((m) => m.rpc === rpc)!
    .serialize(request);

/** Sends raw StreamedCommands on one stream and collects their outcomes by request id. */
async function exchange(commands: StreamedCommand[]): Promise<Map<string, StreamedOutcome__Output>> {
  const api = loadApi(definition);
  const stub = new api.shardwrite.v1.CommandStreamService(shard.address, grpc.credentials.createInsecure());
  const out = new Map<string, StreamedOutcome__Output>();
  try {
    await new Promise<void>((resolve, reject) => {
      const call = stub.execute();
      call.on('data', (o: StreamedOutcome__Output) => {
        out.set(o.requestId, o);
        if (out.size === commands.length) call.end();
      });
      call.on('end', resolve);
      call.on('error', reject);
      for (const c of commands) call.write(c);
    });
  } finally {
    stub.close();
  }
  return out;
}

const BadRequest = loadProtoRoot(undefined, ['google/rpc/error_details.proto']).lookupType('google.rpc.BadRequest');

const events = async (streamId: string) => Number((await sql.query('SELECT count(*) AS n FROM events WHERE stream_id = $1', [streamId])).rows[0].n);

describe('packed commands on a shard', () => {
  it('runs a packed command as it runs the same command by its own member, duplicates included', async () => {
    const place = { ...placeOrder('pk-1'), commandId: 'pk-1-place' };
    const packed = { type_url: typeUrlOf('shardwrite.v1.PlaceOrderRequest'), value: serialize('shardwrite.v1.OrderService/PlaceOrder', place) };
    const outcomes = await exchange([{ requestId: 'a', packed }]);
    expect(outcomes.get('a')?.result).toMatchObject({ streamId: 'order-header-pk-1', version: '1', duplicate: false });
    // The retry by its own member is the same command: a duplicate.
    const again = await exchange([{ requestId: 'b', placeOrder: place }]);
    expect(again.get('b')?.result).toMatchObject({ streamId: 'order-header-pk-1', version: '1', duplicate: true });
    expect(await events('order-header-pk-1')).toBe(1);
  });

  it('refuses a packed message it cannot read with INVALID_ARGUMENT naming the field, and writes nothing', async () => {
    const line = serialize('shardwrite.v1.OrderService/AddOrderLine', { orderId: 'pk-bad', lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '1' });
    const outcomes = await exchange([
      { requestId: 'unknown-type', packed: { type_url: typeUrlOf('shardwrite.v1.NoSuchRequest'), value: line } },
      { requestId: 'not-a-command', packed: { type_url: typeUrlOf('shardwrite.v1.ReadStreamRequest'), value: Buffer.alloc(0) } },
      { requestId: 'no-type', packed: { type_url: '', value: line } },
      { requestId: 'bad-value', packed: { type_url: typeUrlOf('shardwrite.v1.AddOrderLineRequest'), value: Buffer.from([0x0a, 0xff]) } },
      {
        requestId: 'invalid',
        packed: { type_url: typeUrlOf('shardwrite.v1.AddOrderLineRequest'), value: serialize('shardwrite.v1.OrderService/AddOrderLine', { orderId: 'pk-bad', lineId: 'l1', sku: 'S', quantity: 0 }) },
      },
      { requestId: 'empty' },
    ]);
    const fields = (id: string) => {
      const error = outcomes.get(id)?.error;
      expect(error?.code, id).toBe(grpc.status.INVALID_ARGUMENT);
      expect(fromStatusMessage(error!).reason, id).toBe('VALIDATION');
      const details = error!.details.find((d) => d.type_url.endsWith('/google.rpc.BadRequest'));
      const bad = BadRequest.toObject(BadRequest.decode(details!.value)) as { field_violations: { field: string }[] };
      return bad.field_violations.map((v) => v.field);
    };
    expect(fields('unknown-type')).toEqual(['packed.type_url']);
    expect(fields('not-a-command')).toEqual(['packed.type_url']);
    expect(fields('no-type')).toEqual(['packed.type_url']);
    expect(fields('bad-value')).toEqual(['packed.value']);
    expect(fields('invalid')).toEqual(['quantity']);
    expect(fields('empty')).toEqual(['command']);
    expect(await events('order-lines-pk-bad')).toBe(0);
  });

  it("serves any command service through the typed client's `service`, in the service's own members when it has them", async () => {
    const client = createClient(shard.address);
    try {
      const orders = client.service<OrderServiceDefinition>('shardwrite.v1.OrderService');
      const placed = await orders.PlaceOrder({ ...placeOrder('pk-svc'), commandId: 'pk-svc' });
      expect(placed).toMatchObject({ streamId: 'order-header-pk-svc', version: '1' });
      await expect(orders.AddOrderLine({ orderId: 'pk-svc', lineId: 'l1', sku: 'S', quantity: 0, unitPriceCents: '1' })).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        reason: 'VALIDATION',
      });
      await expect(orders.ShipOrder({ orderId: 'pk-svc', carrier: 'DHL', trackingNumber: 'T' })).rejects.toBeInstanceOf(CommandFailedError);
      expectThrow(() => client.service('shardwrite.v1.NoSuchService'), /not in the loaded proto definitions/);
      // Built once per service: reading the definitions again for every command would cost on the hot path.
      expect(client.service<OrderServiceDefinition>('shardwrite.v1.OrderService')).toBe(orders);
    } finally {
      client.close();
    }
  });
});

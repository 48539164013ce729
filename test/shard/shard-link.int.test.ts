/**
 * The router's link into a shard (shardwrite.internal.v1.ShardLink), spoken
 * directly: batches of frames, each with the caller's metadata and deadline,
 * answered frame by frame.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { decodeBatch, encodeBatch, encodeHeaders, wrapField, type LinkFrame } from '../../src/grpc/link-codec.js';
import { linkDefinition, loadPackageDefinition } from '../../src/grpc/proto.js';
import { createLogger } from '../../src/observability/logger.js';
import { identityEntries } from '../../src/auth/identity.js';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { connect, placeOrder } from '../support/grpc.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

const definition = loadPackageDefinition();
const stream = (definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition).Execute!;
const encodeCommand = stream.requestSerialize as (c: object) => Buffer;
const decodeOutcome = stream.responseDeserialize as (b: Buffer) => { requestId: string; result?: { version: string }; error?: { code: number; message: string } };
const orders = definition['shardwrite.v1.OrderService'] as unknown as grpc.ServiceDefinition;
const encodePlace = orders.PlaceOrder!.requestSerialize as (r: object) => Buffer;

let db: TestDatabase;
let shard: RunningShard;
let raw: grpc.Client;

beforeAll(async () => {
  db = await createTestDatabase('sw_link');
  const config = loadShardConfig({ DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', SHARDWRITE_INSECURE: 'true', AUTH_TOKENS: tokenEntry('tok', 'svc', '', ['*']) });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  raw = new grpc.Client(shard.address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  raw?.close();
  await shard?.close();
  await db?.drop();
});

/** Opens a link, sends `batches`, and collects every answered frame until `expected` are in. */
function exchange(batches: Buffer[], expected: number): Promise<Map<number, ReturnType<typeof decodeOutcome>>> {
  return new Promise((resolve, reject) => {
    const call = raw.makeBidiStreamRequest<Buffer, Buffer>(
      linkDefinition().path,
      (b) => b,
      (b) => b,
      new grpc.Metadata(),
      {},
    );
    const answers = new Map<number, ReturnType<typeof decodeOutcome>>();
    call.on('data', (batch: Buffer) => {
      for (const f of decodeBatch(batch)) answers.set(f.id, decodeOutcome(Buffer.from(f.body)));
      if (answers.size >= expected) {
        call.end();
        resolve(answers);
      }
    });
    call.on('error', reject);
    for (const b of batches) call.write(b);
  });
}

/** The identity a router verified, as it puts it on a frame. */
const svc = identityEntries({ principal: 'svc', tenant: '', scopes: ['*'] });
const frame = (id: number, body: Buffer, headers: [string, string][] = svc, timeoutMs = 0): LinkFrame => ({
  id,
  body,
  timeoutMs,
  headers: encodeHeaders(headers),
});
const placeFrame = (id: number, orderId: string, headers?: [string, string][]) => frame(id, encodeCommand({ placeOrder: placeOrder(orderId) }), headers);

describe('a shard’s link from a router', () => {
  it('answers every frame of a batch by its id, each with the identity and metadata it carried', async () => {
    const unaryWrapped = wrapField(2, encodePlace(placeOrder('link-wrapped')));
    const answers = await exchange(
      [
        encodeBatch([
          placeFrame(1, 'link-a', [...svc, ['x-correlation-id', 'corr-link']]),
          placeFrame(2, 'link-b', [['authorization', 'Bearer tok']]),
          placeFrame(3, 'link-c', identityEntries({ principal: 'reader', tenant: '', scopes: ['read'] })),
          frame(4, Buffer.from([0xff, 0xff, 0xff])),
          frame(5, unaryWrapped),
        ]),
      ],
      5,
    );
    expect(answers.get(1)?.result?.version).toBe('1');
    expect(answers.get(2)?.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(answers.get(3)?.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(answers.get(4)?.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answers.get(5)?.result?.version).toBe('1');
    // The correlation id of frame 1 (and only its) reached the event's metadata.
    const client = connect(shard.address, { token: 'tok' });
    try {
      const [event] = await client.readStream('order-header', 'link-a');
      expect(event!.metadata).toMatchObject({ correlation_id: 'corr-link' });
      expect(await client.readStream('order-header', 'link-b')).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('keeps the order of one aggregate’s frames within and across batches', async () => {
    const line = (i: number) => encodeCommand({ addOrderLine: { orderId: 'link-order', lineId: `l${i}`, sku: 'S', quantity: 1, unitPriceCents: '5' } });
    const batches = [0, 1, 2].map((b) => encodeBatch(Array.from({ length: 10 }, (_, i) => frame(b * 10 + i + 1, line(b * 10 + i)))));
    const answers = await exchange(batches, 30);
    expect(Array.from({ length: 30 }, (_, i) => answers.get(i + 1)?.result?.version)).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
  });

  it('fails only the link that sends a batch that does not decode; other links carry on', async () => {
    await expect(exchange([Buffer.from([0x0a, 0x7f, 0x01])], 1)).rejects.toMatchObject({ code: expect.any(Number) });
    const answers = await exchange([encodeBatch([placeFrame(9, 'link-after')])], 1);
    expect(answers.get(9)?.result?.version).toBe('1');
  });
});

/**
 * A shard's own in-flight budget is shared by callers: on a router's link,
 * each command counts against the caller the router names on its frame
 * (`x-shardwrite-caller`), so one caller behind a router cannot take the
 * shard's whole budget while another's commands still get in. The store is
 * frozen (its fence row locked by the test) so admitted commands stay in
 * flight.
 */
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { CALLER_KEY, identityEntries } from '../../src/auth/identity.js';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { decodeBatch, encodeBatch, encodeHeaders, wrapField, type LinkFrame } from '../../src/grpc/link-codec.js';
import { linkDefinition, loadPackageDefinition } from '../../src/grpc/proto.js';
import { createLogger } from '../../src/observability/logger.js';
import { placeOrder } from '../support/grpc.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

const definition = loadPackageDefinition();
const stream = (definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition).Execute!;
const decodeOutcome = stream.responseDeserialize as (b: Buffer) => { result?: { version: string }; error?: { code: number; message: string } };
const encodePlace = (definition['shardwrite.v1.OrderService'] as unknown as grpc.ServiceDefinition).PlaceOrder!.requestSerialize as (r: object) => Buffer;
/** StreamedCommand's `place_order` field. */
const PLACE_ORDER = 2;

let db: TestDatabase;
let shard: RunningShard;
let raw: grpc.Client;

beforeAll(async () => {
  db = await createTestDatabase('sw_share');
  const config = loadShardConfig({
    DATABASE_URL: db.url,
    GRPC_ADDRESS: '127.0.0.1:0',
    METRICS_ADDRESS: 'off',
    SHARDWRITE_INSECURE: 'true',
    AUTH_TOKENS: tokenEntry('tok', 'svc', '', ['*']),
    // 25 % of 8: two commands in flight per caller.
    MAX_IN_FLIGHT: '8',
    CALLER_SHARE_PERCENT: '25',
  });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  raw = new grpc.Client(shard.address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  raw?.close();
  await shard?.close();
  await db?.drop();
});

/** A frame placing `orderId`, with a verified identity and, when given, the caller a router names. */
function frame(id: number, orderId: string, caller?: string): LinkFrame {
  const headers = identityEntries({ principal: 'svc', tenant: '', scopes: ['*'] });
  if (caller !== undefined) headers.push([CALLER_KEY, encodeURIComponent(caller)]);
  return { id, body: wrapField(PLACE_ORDER, encodePlace(placeOrder(orderId))), timeoutMs: 20_000, headers: encodeHeaders(headers) };
}

it('gives each caller a router names its share of the shard’s in-flight budget, and refuses the rest at once with OVERLOADED', async () => {
  const lock = new pg.Client({ connectionString: db.url });
  await lock.connect();
  await lock.query('BEGIN');
  await lock.query('SELECT epoch FROM shard_fence WHERE id FOR UPDATE');
  const answers = new Map<number, ReturnType<typeof decodeOutcome>>();
  const call = raw.makeBidiStreamRequest<Buffer, Buffer>(
    linkDefinition().path,
    (b) => b,
    (b) => b,
    new grpc.Metadata(),
    {},
  );
  call.on('data', (batch: Buffer) => {
    for (const f of decodeBatch(batch)) answers.set(f.id, decodeOutcome(Buffer.from(f.body)));
  });
  try {
    const frames = [
      ...Array.from({ length: 5 }, (_, i) => frame(1 + i, `a-${i}`, 'principal:a')),
      ...Array.from({ length: 3 }, (_, i) => frame(11 + i, `b-${i}`, 'principal:b')),
      // A router that names no caller: the frame's principal is the caller.
      frame(21, 'svc-0'),
    ];
    call.write(encodeBatch(frames));
    // While the store is frozen only the refusals come back: a's three beyond its share, b's one.
    await expect.poll(() => answers.size, { timeout: 10_000 }).toBe(4);
    expect([...answers.keys()].sort((x, y) => x - y)).toEqual([3, 4, 5, 13]);
    for (const a of answers.values())
      expect(a.error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, message: expect.stringMatching(/this caller has too many commands in flight at the shard/) });
    expect(shard.pipeline.pending).toBe(5);

    await lock.query('COMMIT');
    await expect.poll(() => answers.size, { timeout: 10_000 }).toBe(9);
    for (const id of [1, 2, 11, 12, 21]) expect(answers.get(id)?.result?.version, `frame ${id}`).toBe('1');
  } finally {
    call.end();
    await lock.end();
  }
});

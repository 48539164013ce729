/**
 * Fairness between callers for unary calls, through a real router: a caller
 * is its principal when it authenticated, so a principal that floods over
 * several connections holds one share of the router's and the shard's
 * budgets, and another principal's calls still get through. The shard is a
 * stand-in that holds the flooding principal's commands unanswered (a flood
 * the shard cannot keep up with) and answers everyone else at once.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRouterConfig } from '../../router/config.js';
import { startRouter, type RunningRouter } from '../../router/router.js';
import { CALLER_KEY, IDENTITY_KEYS } from '../../src/auth/identity.js';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { decodeBatch, decodeHeaders, encodeBatch, type LinkFrame } from '../../src/grpc/link-codec.js';
import { linkDefinition, loadApi, loadPackageDefinition } from '../../src/grpc/proto.js';
import { statusOf, type RpcStatus } from '../../src/grpc/status.js';
import { createLogger } from '../../src/observability/logger.js';
import { PgRingStore } from '../../src/ring/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { placeOrder } from '../support/grpc.js';

const FLOOD_TOKEN = 'flood-token-0123456789';
const OTHER_TOKEN = 'other-token-0123456789';
/** Each caller's share: 25 % of 400 calls, router-wide and at the one shard. */
const SHARE = 100;

let ring: TestDatabase;
let ringStore: PgRingStore;
let shard: grpc.Server;
let router: RunningRouter;
/** What reached the stand-in shard: each command's principal and the caller the router named. */
const seen: { principal: string | undefined; caller: string | undefined }[] = [];
/** The flooding principal's commands, held unanswered until released. */
const held: { call: grpc.ServerDuplexStream<Buffer, Buffer>; frame: LinkFrame }[] = [];
let encodeOutcome: (o: object) => Buffer;
const ok = (orderId: string) => ({ result: { streamId: `order-header-${orderId}`, version: '1', events: [], duplicate: false } });

beforeAll(async () => {
  ring = await createTestDatabase('sw_ring');
  ringStore = new PgRingStore({ connectionString: ring.url });
  await ringStore.migrate();
  const definition = loadPackageDefinition();
  const stream = definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition;
  const decode = stream.Execute!.requestDeserialize as (b: Buffer) => { placeOrder?: { orderId: string } };
  encodeOutcome = stream.Execute!.responseSerialize as (o: object) => Buffer;
  shard = new grpc.Server();
  shard.addService(linkDefinition().service, {
    Execute: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (batch: Buffer) => {
        const answers: LinkFrame[] = [];
        for (const f of decodeBatch(batch)) {
          const headers = new Map(decodeHeaders(f.headers));
          const principal = headers.get(IDENTITY_KEYS.principal);
          seen.push({ principal, caller: headers.get(CALLER_KEY) });
          if (principal === 'flood') held.push({ call, frame: f });
          else answers.push({ id: f.id, body: encodeOutcome(ok(decode(Buffer.from(f.body)).placeOrder!.orderId)), timeoutMs: 0, headers: new Uint8Array() });
        }
        if (answers.length > 0) call.write(encodeBatch(answers));
      });
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => shard.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  await ringStore.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-0', address: `127.0.0.1:${port}` }] });
  router = await startRouter(
    loadRouterConfig({
      SHARDWRITE_INSECURE: 'true',
      GRPC_ADDRESS: '127.0.0.1:0',
      RING_DATABASE_URL: ring.url,
      METRICS_ADDRESS: 'off',
      AUTH_TOKENS: [tokenEntry(FLOOD_TOKEN, 'flood', 't1', ['*']), tokenEntry(OTHER_TOKEN, 'other', 't1', ['*'])].join(','),
      MAX_CALLS_IN_FLIGHT: '400',
      SHARD_MAX_CALLS_IN_FLIGHT: '400',
      CONNECTION_SHARE_PERCENT: '25',
      // The stand-in holds the flood's commands unanswered for seconds on purpose. It answers the router's
      // stall probes at once (UNIMPLEMENTED: the shard is running), but on a loaded machine an answer can
      // miss the probe's deadline (half of SHARD_STALL_MS), and the router would then rightly count the
      // shard as stalled and fail every call UNAVAILABLE (seen once). Stalls are not this test's subject.
      SHARD_STALL_MS: '60000',
    }),
    { logger: createLogger('test', 'silent') },
  );
});

afterAll(async () => {
  await router?.close();
  shard?.forceShutdown();
  await ringStore?.close();
  await ring?.drop();
});

type Orders = grpc.Client & { PlaceOrder: (r: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void) => void };
const api = loadApi();

/** A client on a connection of its own (grpc-js would otherwise share one connection per address). */
function ownConnection(): Orders {
  return new api.shardwrite.v1.OrderService(router.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

function place(client: Orders, token: string, orderId: string, extra: Record<string, string> = {}): Promise<RpcStatus | 'ok'> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return new Promise((resolve) => client.PlaceOrder(placeOrder(orderId), md, (err) => resolve(err ? statusOf(err) : 'ok')));
}

describe('one principal flooding the router over several connections', () => {
  it('holds only its share of the budgets, is refused beyond it at once, and another principal still gets its whole share', async () => {
    const floods = Array.from({ length: 4 }, ownConnection);
    const other = ownConnection();
    try {
      // 4 connections × 100 calls: by connection, they would hold all 400 calls the router and the shard allow.
      // The flood forges the caller name the router sends the shard; the router replaces it.
      const flooding = floods.flatMap((c, n) => Array.from({ length: SHARE }, (_, i) => place(c, FLOOD_TOKEN, `f-${n}-${i}`, { [CALLER_KEY]: 'principal:other' })));
      const refused = (await Promise.all(flooding.map((p) => Promise.race([p, new Promise<'held'>((r) => setTimeout(() => r('held'), 3000))])))).filter((o) => o !== 'held');
      // Everything beyond the share was refused without waiting for the shard; the share itself is held there.
      expect(refused).toHaveLength(3 * SHARE);
      for (const r of refused) expect(r).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, reason: 'OVERLOADED' });
      expect(held).toHaveLength(SHARE);
      expect(seen.filter((s) => s.principal === 'flood').every((s) => s.caller === encodeURIComponent('principal:flood'))).toBe(true);

      // Another principal, while the flood holds its share: every one of its share's calls succeeds.
      const others = await Promise.all(Array.from({ length: SHARE }, (_, i) => place(other, OTHER_TOKEN, `o-${i}`)));
      expect(others.filter((o) => o === 'ok')).toHaveLength(SHARE);
      expect(seen.filter((s) => s.principal === 'other').every((s) => s.caller === encodeURIComponent('principal:other'))).toBe(true);

      // The held commands answered, the flood's share is free again.
      for (const { call, frame } of held.splice(0)) call.write(encodeBatch([{ id: frame.id, body: encodeOutcome(ok('f')), timeoutMs: 0, headers: new Uint8Array() }]));
      expect((await Promise.all(flooding)).filter((o) => o === 'ok')).toHaveLength(SHARE);
      const again = place(floods[0]!, FLOOD_TOKEN, 'f-again');
      await expect.poll(() => held.length).toBe(1);
      held[0]!.call.write(encodeBatch([{ id: held[0]!.frame.id, body: encodeOutcome(ok('f-again')), timeoutMs: 0, headers: new Uint8Array() }]));
      expect(await again).toBe('ok');
    } finally {
      for (const c of [...floods, other]) c.close();
    }
  });
});

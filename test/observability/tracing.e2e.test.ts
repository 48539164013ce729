import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createClient } from '../../src/client/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { freePort } from '../support/postgres-process.js';
import { connect, placeOrder } from '../support/grpc.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';

const SERVER = 2;
const CLIENT = 3;

let receiver: OtlpReceiver;
let cluster: Cluster;
let shard0Metrics: string;

/** Sets up a cluster exporting to a receiver of `protocol` for the tests `tests` defines. */
function exportingOver(protocol: 'http/protobuf' | 'http/json', tests: () => void): void {
  describe(`exporting OTLP/HTTP ${protocol}`, () => {
    beforeAll(async () => {
      receiver = await startOtlpReceiver(protocol);
      shard0Metrics = `127.0.0.1:${await freePort()}`;
      cluster = await startCluster({
        shards: 2,
        shardEnv: (i) => ({ ...receiver.env(), ...(i === 0 ? { METRICS_ADDRESS: shard0Metrics } : {}) }),
        routerEnv: receiver.env(),
      });
    }, 120_000);

    afterAll(async () => {
      await cluster?.close();
      await receiver?.close();
    });
    tests();
  });
}

/** A caller's own trace context. */
function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
const childrenOf = (span: ReceivedSpan) => receiver.spans.filter((s) => s.traceId === span.traceId && s.parentSpanId === span.spanId);
const isPg = (s: ReceivedSpan) => s.attributes['db.system'] === 'postgresql' || s.attributes['db.system.name'] === 'postgresql';

/** The ids of a span's ancestors in its trace, nearest first. */
function ancestors(span: ReceivedSpan): string[] {
  const out: string[] = [];
  for (let s: ReceivedSpan | undefined = span; s?.parentSpanId;) {
    out.push(s.parentSpanId);
    const parentId: string = s.parentSpanId;
    s = receiver.spans.find((p) => p.traceId === span.traceId && p.spanId === parentId);
  }
  return out;
}

/** Decisions shard-0 made so far (each is handed to the writer right after), from its /metrics. */
async function decided(): Promise<number> {
  const text = await (await fetch(`http://${shard0Metrics}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^shardwrite_stage_duration_seconds_count\{[^}]*stage="decide"[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** Sessions of the shard's writer waiting for a lock. */
async function blockedWriters(lock: { query: (sql: string) => Promise<{ rows: { n: string }[] }> }): Promise<number> {
  const { rows } = await lock.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'shardwrite-writer' AND wait_event_type = 'Lock'");
  return Number(rows[0]!.n);
}

/** Orders that shard-0 owns. */
function ordersOnShard0(prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (cluster.ownerOf(`${prefix}-${i}`) === 'shard-0') out.push(`${prefix}-${i}`);
  return out;
}

/** The spans of one command through the router: the router's span under `parentSpanId`, the shard's under it. */
async function commandSpans(traceId: string, parentSpanId: string, count = 1): Promise<{ router: ReceivedSpan; shard: ReceivedSpan }[]> {
  const routers = () => inTrace(traceId).filter((s) => s.service === 'shardwrite-router' && s.kind === CLIENT && s.parentSpanId === parentSpanId);
  const shards = () => inTrace(traceId).filter((s) => s.service === 'shardwrite-shard' && s.kind === SERVER && s.name.endsWith('/PlaceOrder'));
  await expect.poll(() => [routers().length, shards().length], { timeout: 10_000 }).toEqual([count, count]);
  return routers().map((router) => {
    const shard = childrenOf(router).find((s) => s.service === 'shardwrite-shard' && s.kind === SERVER);
    expect(shard, `the shard span under router span ${router.spanId}`).toBeDefined();
    return { router, shard: shard! };
  });
}

// The default protocol (shardwrite's own spans encoded as they end) and JSON (through the SDK's processor).
for (const protocol of ['http/protobuf', 'http/json'] as const)
  exportingOver(protocol, () =>
    describe('tracing from caller to commit', () => {
      it("traces a streamed command in the caller's trace: router span, shard span with its stages, and the batch span linked to it with PostgreSQL under it", async () => {
        const caller = callerContext();
        const client = createClient(cluster.routerAddress, { metadata: { traceparent: caller.traceparent } });
        const [orderId] = ordersOnShard0('trace-one', 1);
        await client.placeOrder(placeOrder(orderId!));
        client.close();

        const [{ router, shard }] = (await commandSpans(caller.traceId, caller.spanId)) as [{ router: ReceivedSpan; shard: ReceivedSpan }];
        expect(router.name).toBe('shardwrite.v1.CommandStreamService/Execute');
        expect(router.attributes).toMatchObject({ 'rpc.system': 'grpc', 'shardwrite.shard': 'shard-0', 'shardwrite.ring.epoch': 1, 'rpc.grpc.status_code': 0 });
        expect(shard.name).toBe('shardwrite.v1.OrderService/PlaceOrder');
        expect(shard.attributes).toMatchObject({
          'rpc.system': 'grpc',
          'rpc.service': 'shardwrite.v1.OrderService',
          'rpc.method': 'PlaceOrder',
          'rpc.grpc.status_code': 0,
          'shardwrite.command': 'PlaceOrder',
          'shardwrite.aggregate_type': 'order-header',
        });
        expect(shard.events.map((e) => e.name)).toEqual(['validated', 'authorized', 'queue', 'load', 'decide', 'append']);
        const load = shard.events.find((e) => e.name === 'load')!;
        expect(load.attributes).toMatchObject({ 'shardwrite.load.tier': 'assumed_new', 'shardwrite.attempt': 0 });
        for (const e of shard.events.slice(2)) expect(e.attributes['shardwrite.stage.duration_ms']).toBeGreaterThanOrEqual(0);

        // The batch that committed it: under its span and linked to it, the PostgreSQL statement under the batch.
        await expect.poll(() => childrenOf(shard).map((s) => s.name), { timeout: 10_000 }).toEqual(['group commit']);
        const [batch] = childrenOf(shard) as [ReceivedSpan];
        expect(batch.links).toContainEqual({ traceId: caller.traceId, spanId: shard.spanId });
        expect(batch.attributes).toMatchObject({ 'shardwrite.batch.entries': 1, 'shardwrite.batch.commands': 1, 'shardwrite.batch.events': 1 });
        expect(batch.attributes['shardwrite.batch.first_position']).toMatch(/^\d+$/);
        await expect.poll(() => childrenOf(batch).filter(isPg).length, { timeout: 10_000 }).toBeGreaterThan(0);
        // PostgreSQL spans of this trace are under the batch span (or the shard span, for reads), never elsewhere.
        for (const pgSpan of inTrace(caller.traceId).filter(isPg)) expect(ancestors(pgSpan)).toContain(shard.spanId);

        // The event records the trace it was written in (I14), for its consumers to continue.
        const { rows } = await cluster
          .shard('shard-0')
          .sql.query<{ traceparent: string }>(`SELECT metadata->>'traceparent' AS traceparent FROM events WHERE stream_id = $1`, [`order-header-${orderId}`]);
        expect(rows).toEqual([{ traceparent: `00-${caller.traceId}-${shard.spanId}-01` }]);

        // No payload, personal data or query parameter in any span of the trace.
        const exported = JSON.stringify(inTrace(caller.traceId));
        for (const secret of ['ada@example.com', 'Ada Lovelace', 'St James', orderId!]) expect(exported).not.toContain(secret);
      });

      it('commits ten commands batched together in one batch span linked to all ten command spans', async () => {
        // Keep shard-0's writer busy on a first batch (its statement waits for the fence row's lock),
        // so the ten commands queue behind it and leave together in the next one.
        const lock = await cluster.shard('shard-0').sql.connect();
        const caller = callerContext();
        const client = createClient(cluster.routerAddress, { metadata: { traceparent: caller.traceparent } });
        try {
          await lock.query('BEGIN');
          await lock.query('SELECT 1 FROM shard_fence FOR UPDATE');
          const before = await decided();
          const first = client.placeOrder(placeOrder(ordersOnShard0('trace-first', 1)[0]!));
          await expect.poll(() => blockedWriters(lock), { timeout: 10_000 }).toBe(1);
          const orders = ordersOnShard0('trace-ten', 10);
          const ten = Promise.all(orders.map((id) => client.placeOrder(placeOrder(id) as never)));
          await expect.poll(() => decided(), { timeout: 10_000 }).toBe(before + 11);
          await lock.query('COMMIT');
          await Promise.all([first, ten]);
        } finally {
          lock.release();
          client.close();
        }

        const all = await commandSpans(caller.traceId, caller.spanId, 11);
        // The first command went alone, in the batch that waited for the lock.
        const alone = receiver.spans.filter((s) => s.name === 'group commit' && s.links.length === 1 && all.some((c) => c.shard.spanId === s.links[0]!.spanId));
        expect(alone).toHaveLength(1);
        const commands = all.filter((c) => c.shard.spanId !== alone[0]!.links[0]!.spanId);
        const shardSpans = new Set(commands.map((c) => c.shard.spanId));
        expect(shardSpans.size).toBe(10);
        await expect.poll(() => receiver.spans.filter((s) => s.name === 'group commit' && s.links.some((l) => shardSpans.has(l.spanId))).length, { timeout: 10_000 }).toBeGreaterThan(0);
        const batches = receiver.spans.filter((s) => s.name === 'group commit' && s.links.some((l) => shardSpans.has(l.spanId)));
        expect(batches).toHaveLength(1);
        const [batch] = batches as [ReceivedSpan];
        expect(new Set(batch.links.map((l) => l.spanId))).toEqual(shardSpans);
        expect(batch.attributes['shardwrite.batch.entries']).toBe(10);
        // The batch is a child of one of the ten commands' spans, and its statement is under it.
        expect([...shardSpans]).toContain(batch.parentSpanId);
        await expect.poll(() => childrenOf(batch).filter(isPg).length, { timeout: 10_000 }).toBeGreaterThan(0);
      });

      it("makes no span for a command whose caller's trace is not sampled, and records the caller's traceparent in its events", async () => {
        const caller = callerContext();
        const unsampled = caller.traceparent.replace(/-01$/, '-00');
        const client = createClient(cluster.routerAddress, { metadata: { traceparent: unsampled } });
        const [orderId] = ordersOnShard0('trace-unsampled', 1);
        await client.placeOrder(placeOrder(orderId!));
        client.close();
        // A sampled command afterwards: once its spans are in, the unsampled one's would have been too.
        const sampled = callerContext();
        const after = createClient(cluster.routerAddress, { metadata: { traceparent: sampled.traceparent } });
        await after.placeOrder(placeOrder(ordersOnShard0('trace-sampled-after', 1)[0]!));
        after.close();
        await commandSpans(sampled.traceId, sampled.spanId);

        expect(inTrace(caller.traceId)).toEqual([]);
        const { rows } = await cluster
          .shard('shard-0')
          .sql.query<{ traceparent: string }>(`SELECT metadata->>'traceparent' AS traceparent FROM events WHERE stream_id = $1`, [`order-header-${orderId}`]);
        expect(rows).toEqual([{ traceparent: unsampled }]);
      });

      it("continues a unary caller's trace through the router's gRPC server span to the shard and PostgreSQL", async () => {
        const caller = callerContext();
        const clients = connect(cluster.routerAddress);
        const [orderId] = ordersOnShard0('trace-unary', 1);
        await clients.call('PlaceOrder', placeOrder(orderId!), { metadata: { traceparent: caller.traceparent } });
        clients.close();

        await expect.poll(() => inTrace(caller.traceId).filter(isPg).length, { timeout: 10_000 }).toBeGreaterThan(0);
        // Each process exports on its own schedule: the router's span may arrive after the shard's.
        const routerServer = () => inTrace(caller.traceId).find((s) => s.service === 'shardwrite-router' && s.kind === SERVER && s.parentSpanId === caller.spanId);
        await expect.poll(routerServer, { timeout: 10_000 }).toBeDefined();
        const server = routerServer();
        expect(server?.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'shardwrite.v1.OrderService', 'rpc.method': 'PlaceOrder' });
        const [{ router, shard }] = (await commandSpans(caller.traceId, server!.spanId)) as [{ router: ReceivedSpan; shard: ReceivedSpan }];
        expect(router.name).toBe('shardwrite.v1.OrderService/PlaceOrder');
        expect(shard.name).toBe('shardwrite.v1.OrderService/PlaceOrder');
        // The link's own gRPC call is the parent of nothing: every span of the trace descends from the caller's.
        const ids = new Set([caller.spanId, ...inTrace(caller.traceId).map((s) => s.spanId)]);
        for (const s of inTrace(caller.traceId)) expect(ids.has(s.parentSpanId), `${s.name} has a parent in the trace`).toBe(true);
      });

      it("continues a caller's trace through a ReadStream the router forwards as a call of its own", async () => {
        const caller = callerContext();
        const clients = connect(cluster.routerAddress);
        const [orderId] = ordersOnShard0('trace-read', 1);
        await clients.call('PlaceOrder', placeOrder(orderId!));
        const metadata = new grpc.Metadata();
        metadata.set('traceparent', caller.traceparent);
        await new Promise<void>((resolve, reject) => {
          const stream = clients.events.ReadStream({ aggregateType: 'order-header', aggregateId: orderId!, fromVersion: '1' }, metadata);
          stream.on('data', () => {});
          stream.on('end', resolve);
          stream.on('error', reject);
        });
        clients.close();

        const named = (service: string, kind: number) => inTrace(caller.traceId).find((s) => s.service === service && s.kind === kind && s.name.endsWith('EventStoreService/ReadStream'));
        // Each process exports on its own schedule: the router's server span ends last, after the stream.
        await expect.poll(() => [named('shardwrite-shard', SERVER), named('shardwrite-router', SERVER), named('shardwrite-router', CLIENT)].every(Boolean), { timeout: 10_000 }).toBe(true);
        const routerServer = named('shardwrite-router', SERVER)!;
        const routerClient = named('shardwrite-router', CLIENT)!;
        expect(routerServer.parentSpanId).toBe(caller.spanId);
        expect(routerClient.parentSpanId).toBe(routerServer.spanId);
        expect(named('shardwrite-shard', SERVER)!.parentSpanId).toBe(routerClient.spanId);
      });
    }),
  );

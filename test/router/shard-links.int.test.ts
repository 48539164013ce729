/**
 * The router's stall detection against a scripted shard over real gRPC: a
 * shard is declared stalled only when an answer is due and neither the
 * commands nor a health probe are answered over a connection that is up.
 * A command the shard holds on purpose while a move seals its stream, and
 * time spent connecting, are not stalls — a slow probe on a busy machine
 * must not fail them with SHARD_UNAVAILABLE (the rebalancing test's moved
 * orders did, now and then).
 */
import * as grpc from '@grpc/grpc-js';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Admission } from '../../router/admission.js';
import { RouterMetrics } from '../../router/metrics.js';
import { ShardLinks } from '../../router/shard-links.js';
import { ShardPool } from '../../router/shard-pool.js';
import { ShardUnavailableError } from '../../src/errors.js';
import { decodeBatch, decodeHeaders, encodeBatch } from '../../src/grpc/link-codec.js';
import { linkDefinition } from '../../src/grpc/proto.js';
import { createLogger } from '../../src/observability/logger.js';
import { formatTraceparent } from '../../src/observability/tracing.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { RingView, type RingDocument, type RingWatcher } from '../../src/ring/index.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const STALL_MS = 400;
const identity = (b: Buffer) => b;

/** How the scripted shard behaves: how long it holds each command, and how long a health probe takes. */
const script = { holdMs: 0, healthMs: 0 };
/** The headers of every frame the scripted shard received. */
const received: [string, string][][] = [];
let server: grpc.Server;
let shardAddress: string;

beforeAll(async () => {
  server = new grpc.Server();
  const link = linkDefinition();
  server.addService(link.service, {
    Execute: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (batch: Buffer) => {
        for (const frame of decodeBatch(batch)) {
          received.push(decodeHeaders(frame.headers));
          // An empty StreamedOutcome: a plain success.
          setTimeout(() => call.write(encodeBatch([{ id: frame.id, body: Buffer.alloc(0), timeoutMs: 0, headers: new Uint8Array() }])), script.holdMs);
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      // An empty HealthCheckResponse, as late as the script says (a busy process).
      Check: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        setTimeout(() => callback(null, Buffer.alloc(0)), script.healthMs);
      },
    },
  );
  shardAddress = await new Promise<string>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(`127.0.0.1:${port}`))),
  );
});

afterAll(() => {
  server?.forceShutdown();
});

const open: { links: ShardLinks; pool: ShardPool }[] = [];
afterEach(() => {
  for (const { links, pool } of open.splice(0)) {
    links.close();
    pool.close();
  }
});

/** ShardLinks to `address` as shard-a, with a ring watcher that holds `ring` and, when given, a move under way to `pending`. */
function linksTo(address: string, pending?: RingDocument, tracer?: Tracer): ShardLinks {
  const ring: RingDocument = { epoch: 1, shards: [{ id: 'shard-a', address }] };
  const view = new RingView(ring);
  const watcher = {
    view,
    epoch: 1,
    pending: pending ? new RingView(pending) : undefined,
    refresh: async () => view,
    nudge: () => {},
  } as unknown as RingWatcher;
  const logger = createLogger('test', 'silent');
  const metrics = new RouterMetrics(createRegistry('t_links_'));
  const pool = new ShardPool({
    breaker: { errorThresholdPercent: 50, volumeThreshold: 5, windowMs: 10_000, resetMs: 1000 },
    reconnectMaxMs: 500,
    credentials: grpc.credentials.createInsecure(),
    metrics,
    logger,
    onChange: () => {},
  });
  pool.sync(ring.shards);
  const admission = new Admission({
    maxCalls: 1000,
    maxBytes: 1 << 24,
    shardMaxCalls: 1000,
    shardMaxBytes: 1 << 24,
    connectionSharePercent: 100,
    retryAfterMs: 100,
  });
  const links = new ShardLinks({ link: linkDefinition(), watcher, pool, metrics, logger, admission, stallMs: STALL_MS, ...(tracer ? { tracer } : {}) });
  open.push({ links, pool });
  return links;
}

/** Sends one command for `key`; resolves with how it was settled and after how long. */
function send(links: ShardLinks, key: string, deadline = Date.now() + 10_000): Promise<{ outcome: Buffer | undefined; err: unknown; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) =>
    links.send({
      key,
      body: Buffer.from([0x0a, 0x00]),
      deadline,
      headers: new Uint8Array(),
      caller: 'test',
      rpc: 'shardwrite.v1.CommandStreamService/Execute',
      settle: (_shard, outcome, err) => resolve({ outcome, err, ms: performance.now() - started }),
    }),
  );
}

/** A move under way that gives `key` to shard-b, and a key it leaves with shard-a. */
function aMove(): { pending: RingDocument; moving: string; staying: string } {
  const pending: RingDocument = {
    epoch: 2,
    shards: [
      { id: 'shard-a', address: '127.0.0.1:1' },
      { id: 'shard-b', address: '127.0.0.1:2' },
    ],
  };
  const view = new RingView(pending);
  const keys = Array.from({ length: 100 }, (_, i) => `order-${i}`);
  return { pending, moving: keys.find((k) => view.ownerOf(k).id === 'shard-b')!, staying: keys.find((k) => view.ownerOf(k).id === 'shard-a')! };
}

it('declares a shard stalled when an answer is due and neither the command nor a probe is answered in time', async () => {
  Object.assign(script, { holdMs: 1500, healthMs: 800 });
  const links = linksTo(shardAddress);
  const r = await send(links, 'order-1');
  expect(r.err).toBeInstanceOf(ShardUnavailableError);
  expect(String(r.err)).toMatch(/not answering/);
  expect(r.ms).toBeLessThan(1400);
}, 20_000);

it('does not count commands its shard holds while a move seals their streams: a slow probe fails none of them', async () => {
  Object.assign(script, { holdMs: 1500, healthMs: 800 });
  const { pending, moving } = aMove();
  const links = linksTo(shardAddress, pending);
  const held = await Promise.all([send(links, moving), send(links, moving)]);
  for (const r of held) {
    expect(r.err).toBeUndefined();
    expect(r.outcome).toBeInstanceOf(Buffer);
    expect(r.ms).toBeGreaterThanOrEqual(1400);
  }
}, 20_000);

it('still stalls a link with a command that is due beside the held ones', async () => {
  Object.assign(script, { holdMs: 1500, healthMs: 800 });
  const { pending, moving, staying } = aMove();
  const links = linksTo(shardAddress, pending);
  const [held, due] = await Promise.all([send(links, moving), send(links, staying)]);
  expect(due.err).toBeInstanceOf(ShardUnavailableError);
  // The shard is judged as a whole: the held command goes with it (outcome unknown, retried with its command id).
  expect(held.err).toBeInstanceOf(ShardUnavailableError);
}, 20_000);

it('does not declare a stall while the connection to the shard is still being set up', async () => {
  Object.assign(script, { holdMs: 0, healthMs: 0 });
  const proxy: TcpProxy = await startTcpProxy(shardAddress);
  try {
    // The TCP connection opens, but the HTTP/2 handshake waits: the channel stays CONNECTING.
    proxy.pause();
    const links = linksTo(proxy.address);
    const answer = send(links, 'order-2');
    setTimeout(() => proxy.resume(), 4 * STALL_MS);
    const r = await answer;
    expect(r.err).toBeUndefined();
    expect(r.outcome).toBeInstanceOf(Buffer);
    expect(r.ms).toBeGreaterThanOrEqual(4 * STALL_MS - 50);
  } finally {
    await proxy.close();
  }
}, 20_000);

it("ends a traced command's span once with its answer, whether the shard gave it or the router refused the command, and sends the span's context in its frame", async () => {
  Object.assign(script, { holdMs: 0, healthMs: 0 });
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
  const links = linksTo(shardAddress, undefined, tracer);
  received.length = 0;

  expect((await send(links, 'order-3')).err).toBeUndefined();
  const late = await send(links, 'order-4', Date.now() - 1);
  expect(late.err).toBeDefined();

  const [answered, refused, ...more] = exporter.getFinishedSpans();
  expect(more).toEqual([]);
  expect(answered!.attributes).toMatchObject({ 'shardwrite.shard': 'shard-a', 'shardwrite.ring.epoch': 1, 'rpc.grpc.status_code': grpc.status.OK });
  expect(answered!.status.code).toBe(SpanStatusCode.UNSET);
  expect(refused!.attributes).toMatchObject({ 'shardwrite.shard': 'shard-a', 'rpc.grpc.status_code': grpc.status.DEADLINE_EXCEEDED });
  expect(refused!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'DEADLINE_EXCEEDED' });
  // Only the answered command reached the shard, carrying its own span's context.
  expect(received).toEqual([[['traceparent', formatTraceparent(answered!.spanContext())]]]);
});

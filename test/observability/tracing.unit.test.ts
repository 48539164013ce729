import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { ROOT_CONTEXT, context, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { decodeHeaders } from '../../src/grpc/link-codec.js';
import { createLogger } from '../../src/observability/logger.js';
import { CALLER_KEY } from '../../src/auth/identity.js';
import {
  SpanKind,
  TRACING_OFF,
  UNSAMPLED,
  extractContext,
  parentOf,
  formatTraceparent,
  rpcAttributes,
  startRpcSpan,
  startTracing,
  tracingRequested,
  validTraceparent,
  type Tracer,
} from '../../src/observability/tracing.js';
import { SynchronousContextManager } from '../../src/observability/tracing-sdk.js';
import { linkCaller } from '../../router/shard-links.js';
import { contextOf } from '../../shard/grpc-services.js';
import { expectRejection, expectThrow } from '../support/expect-error.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('tracing configuration', () => {
  it('is on only when the environment names an endpoint or an exporter, and never when disabled', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
  });

  it('starts nothing when off, and refuses an exporter or protocol it does not have', async () => {
    expect(await startTracing({}, { serviceName: 'test' })).toBe(TRACING_OFF);
    await expectRejection(startTracing({ OTEL_TRACES_EXPORTER: 'zipkin' }, { serviceName: 'test' }), /OTEL_TRACES_EXPORTER=zipkin is not supported/);
    await expectRejection(startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, { serviceName: 'test' }), /protocol=grpc|PROTOCOL=grpc/);
  });
});

describe('trace context', () => {
  it('keeps a well-formed W3C traceparent and drops anything else (it is recorded in events)', () => {
    expect(validTraceparent(TRACEPARENT)).toBe(TRACEPARENT);
    for (const bad of [
      undefined,
      '',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
      `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 <script>`,
      // What a propagator reads but an event does not store: padding, further fields.
      ` ${TRACEPARENT}`,
      `${TRACEPARENT}-extra`,
      '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future',
    ]) {
      expect(validTraceparent(bad), String(bad)).toBeUndefined();
    }
    const read = (headers: Record<string, string>) => contextOf(undefined, (k) => headers[k]);
    expect(read({ traceparent: TRACEPARENT }).traceparent).toBe(TRACEPARENT);
    expect(read({ traceparent: 'garbage' }).traceparent).toBeUndefined();
  });

  it("reads a caller's traceparent and tracestate exactly as the W3C trace-context propagator does", () => {
    const oracle = new W3CTraceContextPropagator();
    const cases: [string | undefined, string | undefined][] = [
      [TRACEPARENT, undefined],
      [TRACEPARENT, 'vendor=1,other=x'],
      ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00', undefined],
      [` ${TRACEPARENT} `, undefined],
      ['01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future', undefined],
      [`${TRACEPARENT}-extra`, undefined],
      ['ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', undefined],
      ['00-00000000000000000000000000000000-b7ad6b7169203331-01', undefined],
      ['00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', undefined],
      ['00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', undefined],
      ['garbage', 'vendor=1'],
      [undefined, 'vendor=1'],
    ];
    for (const [traceparent, tracestate] of cases) {
      const read = (key: string) => (key === 'traceparent' ? traceparent : key === 'tracestate' ? tracestate : undefined);
      const ours = trace.getSpanContext(extractContext(read));
      const theirs = trace.getSpanContext(oracle.extract(ROOT_CONTEXT, read, { get: (r, k) => r(k), keys: () => [] }));
      expect({ ...ours, traceState: ours?.traceState?.serialize() }, `${traceparent} ${tracestate}`).toEqual({ ...theirs, traceState: theirs?.traceState?.serialize() });
      // What a shard reads from a traceparent it already accepted for its events is the same.
      const valid = validTraceparent(traceparent);
      if (valid === undefined) continue;
      const parent = trace.getSpanContext(parentOf(valid, tracestate));
      expect({ ...parent, traceState: parent?.traceState?.serialize() }, `${traceparent} ${tracestate}`).toEqual({ ...theirs, traceState: theirs?.traceState?.serialize() });
    }
    expect(trace.getSpanContext(extractContext((k) => (k === 'traceparent' ? TRACEPARENT : undefined)))).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', isRemote: true });
  });

  it('formats a span context as a W3C traceparent, with its sampled flag', () => {
    const sc = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
    expect(formatTraceparent(sc)).toBe(TRACEPARENT);
    expect(formatTraceparent({ ...sc, traceFlags: 0 })).toBe(TRACEPARENT.replace(/01$/, '00'));
  });

  it("carries the caller's traceparent over the link untraced, and leaves it to the router's span when traced", () => {
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', TRACEPARENT);
    metadata.set('tracestate', 'vendor=1');
    metadata.set('x-correlation-id', 'c1');
    metadata.set('authorization', 'Bearer secret');
    const call = { getDeadline: () => Infinity, getPeer: () => 'peer', metadata };
    const keys = (traced: boolean) =>
      decodeHeaders(linkCaller(call, traced).headers)
        .map(([k]) => k)
        .sort();
    // The caller the router names (x-shardwrite-caller) travels on every frame.
    expect(keys(false)).toEqual(['traceparent', 'tracestate', 'x-correlation-id', 'x-shardwrite-caller']);
    expect(keys(true)).toEqual(['x-correlation-id', 'x-shardwrite-caller']);
  });

  it("marks the frame of a command the router did not sample, with the caller's own context, and drops a caller's mark", () => {
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', TRACEPARENT);
    metadata.set('x-correlation-id', 'c1');
    metadata.set(UNSAMPLED, 'forged');
    const call = { getDeadline: () => Infinity, getPeer: () => 'peer', metadata };
    expect(linkCaller(call, false).unsampledHeaders).toBeUndefined();
    expect(decodeHeaders(linkCaller(call, false).headers).map(([k]) => k)).not.toContain(UNSAMPLED);
    const unsampled = decodeHeaders(linkCaller(call, true).unsampledHeaders!);
    expect(unsampled.filter(([k]) => k !== CALLER_KEY).sort()).toEqual([
      ['traceparent', TRACEPARENT],
      ['x-correlation-id', 'c1'],
      [UNSAMPLED, '1'],
    ]);
  });

  it('gives an RPC span its semantic-convention attributes only when it records', () => {
    const recorded: Record<string, unknown>[] = [];
    const tracerOf = (recording: boolean) =>
      ({
        startSpan: () => ({ isRecording: () => recording, setAttributes: (a: Record<string, unknown>) => recorded.push(a) }),
      }) as unknown as Tracer;
    startRpcSpan(tracerOf(false), 'shardwrite.v1.OrderService/PlaceOrder', SpanKind.SERVER, ROOT_CONTEXT);
    expect(recorded).toEqual([]);
    startRpcSpan(tracerOf(true), 'shardwrite.v1.OrderService/PlaceOrder', SpanKind.SERVER, ROOT_CONTEXT);
    expect(recorded).toEqual([{ 'rpc.system': 'grpc', 'rpc.service': 'shardwrite.v1.OrderService', 'rpc.method': 'PlaceOrder' }]);
    expect(rpcAttributes('shardwrite.v1.OrderService/PlaceOrder')).toBe(rpcAttributes('shardwrite.v1.OrderService/PlaceOrder'));
  });
});

describe('the synchronous context manager', () => {
  it('makes a context active for the synchronous extent of `with` only, and restores the previous one, also on a throw', async () => {
    const manager = new SynchronousContextManager();
    const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    let later: unknown = 'not run';
    const inside = manager.with(ctx, () => {
      void Promise.resolve().then(() => (later = trace.getSpan(manager.active())));
      return trace.getSpan(manager.active());
    });
    expect(inside).toBe(span);
    expect(manager.active()).toBe(ROOT_CONTEXT);
    await Promise.resolve();
    expect(later).toBeUndefined();
    expectThrow(
      () =>
        manager.with(ctx, () => {
          throw new Error('x');
        }),
      'x',
    );
    expect(manager.active()).toBe(ROOT_CONTEXT);
    expect(manager.bind(ctx, () => trace.getSpan(manager.active()))()).toBe(span);
  });

  it('gives log lines written inside a traced context its trace and span ids', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, done) => {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const logger = createLogger('test', 'info', sink);
    const manager = new SynchronousContextManager();
    context.setGlobalContextManager(manager);
    try {
      const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
      context.with(trace.setSpan(ROOT_CONTEXT, span), () => logger.info('inside'));
      logger.info('outside');
    } finally {
      context.disable();
    }
    expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' });
    expect(lines[1]!.msg).toBe('outside');
    expect(lines[1]).not.toHaveProperty('trace_id');
  });
});

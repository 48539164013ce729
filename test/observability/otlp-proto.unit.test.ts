import { describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, createTraceState, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, RandomIdGenerator } from '@opentelemetry/sdk-trace-node';
import { LightTracerProvider, readableSpan, type LightSpan } from '../../src/observability/light-spans.js';
import { SpanEncoder } from '../../src/observability/otlp-proto.js';
import { EVERY_VALUE_KIND } from '../support/span-values.js';

const resource = resourceFromAttributes({ 'service.name': 'shardwrite-shard', 'service.instance.id': 'shard-0', 'process.pid': 4242 });

/** Spans of two scopes, interleaved (shardwrite's and the pg instrumentation's), using every kind of value OTLP encodes. */
function spans(): LightSpan[] {
  const out: LightSpan[] = [];
  const provider = new LightTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanLimits: {},
    idGenerator: new RandomIdGenerator(),
    sink: { record: (s) => out.push(s), flush: () => Promise.resolve(), shutdown: () => Promise.resolve() },
  });
  const tracer = provider.getTracer('shardwrite', '1.0.0');
  const other = provider.getTracer('@opentelemetry/instrumentation-pg', '0.76.0', { schemaUrl: 'https://opentelemetry.io/schemas/1.27.0' });
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
    traceState: createTraceState('vendor=1,other=x'),
  });
  for (let round = 0; round < 2; round++) {
    const server = tracer.startSpan('shardwrite.v1.OrderService/PlaceOrder', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': 'PlaceOrder' } }, remote);
    server.setAttributes({ 'shardwrite.ring.epoch': 7, ...EVERY_VALUE_KIND });
    for (let e = 0; e < 40; e++) server.addEvent(e % 2 ? 'decide' : 'load', { 'shardwrite.stage.duration_ms': e / 3, 'shardwrite.attempt': e });
    server.addEvent('authorized');
    server.setStatus({ code: SpanStatusCode.ERROR, message: 'ABORTED' });
    server.end();
    const links = Array.from({ length: 300 }, (_, k) => ({
      context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: (k + 1).toString(16).padStart(16, '0'), traceFlags: k % 2, isRemote: k % 3 === 0 },
      ...(k === 5 ? { attributes: { why: 'batched' } } : {}),
    }));
    const batch = tracer.startSpan('group commit', { links, attributes: { 'db.system.name': 'postgresql' } }, trace.setSpan(ROOT_CONTEXT, server));
    const query = other.startSpan('pg.query:shardwrite_append_batch', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, batch));
    query.setAttribute('db.query.text', `WITH fence AS (SELECT 1) ${'SELECT * FROM events; '.repeat(1000)}`);
    query.end();
    batch.end();
    tracer.startSpan('root', { kind: SpanKind.INTERNAL, root: true }).end();
  }
  return out;
}

/** The request of `list` through one encoder per scope, scopes in the order of their first span. */
function request(list: readonly LightSpan[], encoders = new Map<LightSpan['scope'], SpanEncoder>()): Buffer {
  const order: [LightSpan['scope'], SpanEncoder][] = [];
  for (const span of list) {
    let encoder = encoders.get(span.scope);
    if (!encoder) encoders.set(span.scope, (encoder = new SpanEncoder()));
    if (encoder.appended === 0) order.push([span.scope, encoder]);
    encoder.append(span);
  }
  return Buffer.from(SpanEncoder.takeRequest(resource, order));
}

describe('the OTLP protobuf span encoder', () => {
  it('writes exactly the bytes of the maintained serializer, for every kind of value and two scopes, and again after reusing its buffers and caches', () => {
    const all = spans();
    expect(new Set(all.map((s) => s.scope.name))).toEqual(new Set(['shardwrite', '@opentelemetry/instrumentation-pg']));
    const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(all.map((s) => readableSpan(s, resource)))!);
    expect(expected.length).toBeGreaterThan(20_000);
    const encoders = new Map<LightSpan['scope'], SpanEncoder>();
    expect(request(all, encoders).equals(expected)).toBe(true);
    expect(request(all, encoders).equals(expected)).toBe(true);
    const one = all.slice(1, 2);
    expect(request(one, encoders).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(one.map((s) => readableSpan(s, resource)))!))).toBe(true);
  });

  it('returns a request of its own: encoding the next one does not change it', () => {
    const all = spans();
    const encoders = new Map<LightSpan['scope'], SpanEncoder>();
    const first = request(all, encoders);
    const copy = Buffer.from(first);
    request(all.slice(2), encoders);
    expect(first.equals(copy)).toBe(true);
  });
});

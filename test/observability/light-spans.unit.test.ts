import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createTraceState, trace, type Span } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, RandomIdGenerator, type Sampler, type SpanLimits } from '@opentelemetry/sdk-trace-node';
import { LightSpan, LightTracerProvider, ProtoSpanSink, readableSpan, type LightTracer, type RequestExporter, type SpanSink } from '../../src/observability/light-spans.js';
import { OtlpProtoRequestExporter, SpanEncoder } from '../../src/observability/otlp-proto.js';
import { STAGE_DURATION, stageEvents } from '../../src/observability/tracing.js';
import { EVERY_VALUE_KIND } from '../support/span-values.js';

const resource = resourceFromAttributes({ 'service.name': 'shardwrite-shard', 'service.instance.id': 'shard-0', 'process.pid': 4242 });
const scope = { name: 'shardwrite' };

/** A sink that keeps what it is given. */
function keeping(): SpanSink & { spans: LightSpan[] } {
  const spans: LightSpan[] = [];
  return { spans, record: (s) => spans.push(s), flush: () => Promise.resolve(), shutdown: () => Promise.resolve() };
}

function tracerWith(sink: SpanSink, sampler: Sampler = new ParentBasedSampler({ root: new AlwaysOnSampler() }), spanLimits: SpanLimits = { attributeValueLengthLimit: 256 }): LightTracer {
  return new LightTracerProvider({ sampler, spanLimits, idGenerator: new RandomIdGenerator(), sink }).getTracer('shardwrite');
}

const remoteParent = () =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: createTraceState('vendor=1,other=x'),
  });

/** Spans of each kind shardwrite records, using every kind of value OTLP encodes. */
function recordedSpans(): LightSpan[] {
  const sink = keeping();
  const tracer = tracerWith(sink);
  const client = tracer.startSpan('shardwrite.v1.CommandStreamService/Execute', { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc' } }, remoteParent());
  client.setAttributes({ 'shardwrite.shard': 'shard-1', 'shardwrite.ring.epoch': 7, 'rpc.grpc.status_code': 0 });
  client.addEvent('wrong_shard', { 'shardwrite.shard': 'shard-0', 'shardwrite.ring.epoch': 6 });
  client.setAttribute('shardwrite.shard', 'shard-2');
  const server = tracer.startSpan('shardwrite.v1.OrderService/PlaceOrder', { kind: SpanKind.SERVER }, trace.setSpan(ROOT_CONTEXT, client));
  server.setAttributes(EVERY_VALUE_KIND);
  server.addEvent('validated', { 'shardwrite.command': 'PlaceOrder', 'shardwrite.aggregate_type': 'order' });
  server.addEvent('authorized');
  // Stage ends are performance.now() readings of the past.
  const t = performance.now() - 50;
  for (let e = 0; e < 30; e++) stageEvents([server], e % 2 ? 'decide' : 'load', t, t + e / 7, { 'shardwrite.attempt': e, 'shardwrite.load.tier': 'memory' });
  stageEvents([server], 'append', t, t + 1.25);
  server.addEvent('at a date', new Date(Date.now() - 5));
  server.setStatus({ code: SpanStatusCode.ERROR, message: 'ABORTED' });
  server.end();
  const links = Array.from({ length: 40 }, (_, k) => ({
    context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: (k + 1).toString(16).padStart(16, '0'), traceFlags: k % 2, isRemote: k % 3 === 0 },
    ...(k === 5 ? { attributes: { why: 'batched' } } : {}),
  }));
  const batch = tracer.startSpan('group commit', { links, attributes: { 'db.system.name': 'postgresql', 'shardwrite.batch.entries': 3 } }, trace.setSpan(ROOT_CONTEXT, server));
  batch.setAttributes({ 'shardwrite.batch.first_position': '17', 'shardwrite.batch.last_position': '19' });
  batch.end();
  client.end();
  tracer.startSpan('root', { root: true }, remoteParent()).end();
  return sink.spans;
}

describe("shardwrite's light spans", () => {
  it('encode to the bytes the maintained serializer writes for the same spans as SDK ReadableSpans', () => {
    const spans = recordedSpans();
    expect(spans.map((s) => s.name)).toEqual(['shardwrite.v1.OrderService/PlaceOrder', 'group commit', 'shardwrite.v1.CommandStreamService/Execute', 'root']);
    const encoder = new SpanEncoder();
    for (const s of spans) encoder.append(s);
    expect(encoder.appended).toBe(4);
    const request = Buffer.from(SpanEncoder.takeRequest(resource, [[scope, encoder]]));
    const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => readableSpan(s, resource)))!);
    expect(request.length).toBeGreaterThan(2000);
    expect(request.equals(expected)).toBe(true);
    // Emptied by takeRequest: the next request holds only what was appended since.
    encoder.append(spans[3]!);
    expect(Buffer.from(SpanEncoder.takeRequest(resource, [[scope, encoder]])).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([readableSpan(spans[3]!, resource)])!))).toBe(true);
  });

  it('read as the SDK would record them: parent, trace state, attributes in order, events with their stage durations, links, status', () => {
    const [server, batch, client, root] = recordedSpans().map((s) => readableSpan(s, resource)) as [
      ReturnType<typeof readableSpan>,
      ReturnType<typeof readableSpan>,
      ReturnType<typeof readableSpan>,
      ReturnType<typeof readableSpan>,
    ];
    expect(client.parentSpanContext).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', isRemote: true });
    expect(client.spanContext().traceState?.serialize()).toBe('vendor=1,other=x');
    // A later value of a key replaces it where it was first set.
    expect(Object.entries(client.attributes)).toEqual([
      ['rpc.system', 'grpc'],
      ['shardwrite.shard', 'shard-2'],
      ['shardwrite.ring.epoch', 7],
      ['rpc.grpc.status_code', 0],
    ]);
    expect(server.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(server.attributes['long.value']).toBe('x'.repeat(256));
    expect(server.events.map((e) => e.name).slice(0, 4)).toEqual(['validated', 'authorized', 'load', 'decide']);
    expect(server.events[3]!.attributes).toEqual({ 'shardwrite.attempt': 1, 'shardwrite.load.tier': 'memory', [STAGE_DURATION]: 0.143 });
    expect(server.events[32]!.attributes).toEqual({ [STAGE_DURATION]: 1.25 });
    expect(server.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ABORTED' });
    const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
    expect(ms(server.events[32]!.time) - ms(server.events[2]!.time)).toBeCloseTo(1.25, 2);
    expect(ms(server.endTime)).toBeGreaterThanOrEqual(ms(server.startTime));
    expect(Math.abs(ms(server.startTime) - Date.now())).toBeLessThan(5000);
    expect(batch.links).toHaveLength(40);
    expect(batch.links[5]).toMatchObject({ attributes: { why: 'batched' } });
    expect(batch.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.spanContext().traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('records a stage as the same event addEvent records with the duration added to its attributes', () => {
    const sink = keeping();
    const tracer = tracerWith(sink);
    const [fast, slow] = [tracer.startSpan('a'), tracer.startSpan('b')] as [Span, Span];
    const t = performance.now();
    stageEvents([fast], 'load', t - 2, t, { 'shardwrite.load.tier': 'redis' });
    slow.addEvent('load', { 'shardwrite.load.tier': 'redis', [STAGE_DURATION]: 2 }, t);
    fast.end();
    slow.end();
    const [a, b] = sink.spans.map((s) => readableSpan(s, resource));
    expect(a!.events).toEqual(b!.events.map((e) => ({ ...e, time: a!.events[0]!.time })));
    expect(Math.abs(a!.events[0]!.time[1] - b!.events[0]!.time[1]) % 1e9).toBeLessThan(2e6);
  });

  it("follow the SDK's sampler: a span it does not record is a non-recording span that nothing exports", () => {
    const sink = keeping();
    const off = tracerWith(sink, new AlwaysOffSampler());
    const span = off.startSpan('x', {}, remoteParent());
    expect(span.isRecording()).toBe(false);
    expect(span).not.toBeInstanceOf(LightSpan);
    expect(span.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(span.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(0);
    span.end();
    // Parent-based: an unsampled caller makes an unsampled span.
    const parentBased = tracerWith(sink);
    const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.NONE, isRemote: true });
    expect(parentBased.startSpan('y', {}, unsampledParent).isRecording()).toBe(false);
    const sampled = parentBased.startSpan('z', {}, remoteParent());
    expect(sampled.isRecording()).toBe(true);
    sampled.end();
    expect(sampled.isRecording()).toBe(false);
    expect(sink.spans.map((s) => s.name)).toEqual(['z']);
  });

  it("keep the SDK's span limits: attribute count and length, events and links (the oldest dropped first)", () => {
    const sink = keeping();
    const tracer = tracerWith(sink, new AlwaysOnSampler(), { attributeCountLimit: 2, attributeValueLengthLimit: 3, eventCountLimit: 2, linkCountLimit: 2, attributePerEventCountLimit: 1 });
    const links = ['1', '2', '3'].map((n) => ({ context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: n.padStart(16, '0'), traceFlags: 1 } }));
    const span = tracer.startSpan('limited', { links });
    span.setAttributes({ a: 'abcdef', b: ['xyzw', 'q'], c: 1 });
    span.addEvent('one');
    span.addEvent('two', { k: 'long value', l: 2 });
    stageEvents([span], 'three', 0, 1, { m: 1 });
    span.end();
    const r = readableSpan(sink.spans[0]!, resource);
    expect(r.attributes).toEqual({ a: 'abc', b: ['xyz', 'q'] });
    expect(r.droppedAttributesCount).toBe(1);
    expect(r.links.map((l) => l.context.spanId)).toEqual(['0000000000000002', '0000000000000003']);
    expect(r.droppedLinksCount).toBe(1);
    expect(r.events.map((e) => [e.name, e.attributes, e.droppedAttributesCount])).toEqual([
      ['two', { k: 'lon' }, 1],
      ['three', { m: 1 }, 1],
    ]);
    expect(r.droppedEventsCount).toBe(1);
  });
});

describe('the protobuf span sink', () => {
  const sent = (): RequestExporter & { requests: Buffer[] } => {
    const requests: Buffer[] = [];
    return { requests, export: (r, done) => (requests.push(Buffer.from(r)), done({})), shutdown: () => Promise.resolve() };
  };

  it('sends a request when it holds a batch of spans, and a smaller one after the delay', async () => {
    const exporter = sent();
    const sink = new ProtoSpanSink(exporter, resource, { maxExportBatchSize: 3, scheduledDelayMillis: 50 });
    const tracer = tracerWith(sink);
    const spans: LightSpan[] = [];
    for (let i = 0; i < 4; i++) {
      const s = tracer.startSpan(`s${i}`) as LightSpan;
      s.end();
      spans.push(s);
    }
    expect(exporter.requests).toHaveLength(1);
    expect(exporter.requests[0]!.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.slice(0, 3).map((s) => readableSpan(s, resource)))!))).toBe(true);
    await new Promise((r) => setTimeout(r, 120));
    expect(exporter.requests).toHaveLength(2);
    expect(exporter.requests[1]!.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([readableSpan(spans[3]!, resource)])!))).toBe(true);
    await sink.shutdown();
    expect(exporter.requests).toHaveLength(2);
  });

  it("puts the spans of each tracer under its own scope (shardwrite's, an instrumentation's), in the maintained serializer's order", async () => {
    const exporter = sent();
    const sink = new ProtoSpanSink(exporter, resource, { maxExportBatchSize: 512, scheduledDelayMillis: 60_000 });
    const provider = new LightTracerProvider({ sampler: new AlwaysOnSampler(), spanLimits: {}, idGenerator: new RandomIdGenerator(), sink });
    expect(provider.getTracer('shardwrite')).toBe(provider.getTracer('shardwrite'));
    const pg = provider.getTracer('@opentelemetry/instrumentation-pg', '0.76.0');
    expect(pg).not.toBe(provider.getTracer('@opentelemetry/instrumentation-pg', '0.77.0'));
    const spans: LightSpan[] = [];
    for (const tracer of [pg, provider.getTracer('shardwrite'), pg, provider.getTracer('@opentelemetry/instrumentation-grpc', '0.223.0'), provider.getTracer('shardwrite')]) {
      const s = tracer.startSpan('s', { kind: SpanKind.CLIENT, attributes: { n: spans.length } }) as LightSpan;
      s.end();
      spans.push(s);
    }
    expect(spans.map((s) => s.scope)).toEqual([
      { name: '@opentelemetry/instrumentation-pg', version: '0.76.0' },
      { name: 'shardwrite' },
      { name: '@opentelemetry/instrumentation-pg', version: '0.76.0' },
      { name: '@opentelemetry/instrumentation-grpc', version: '0.223.0' },
      { name: 'shardwrite' },
    ]);
    await sink.flush();
    expect(exporter.requests).toHaveLength(1);
    expect(exporter.requests[0]!.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => readableSpan(s, resource)))!))).toBe(true);
    // The next request starts afresh: only the scopes of its own spans.
    const last = pg.startSpan('t') as LightSpan;
    last.end();
    await sink.flush();
    expect(exporter.requests[1]!.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([readableSpan(last, resource)])!))).toBe(true);
  });

  it('makes no span where tracing is suppressed (what an exporter does)', () => {
    const sink = keeping();
    const span = tracerWith(sink).startSpan('inside an export', {}, suppressTracing(ROOT_CONTEXT));
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(sink.spans).toHaveLength(0);
  });

  it('posts its requests to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces as application/x-protobuf, the rest on shutdown', async () => {
    const received: { url?: string; type?: string; body: Buffer }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ url: req.url, type: req.headers['content-type'], body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const sink = new ProtoSpanSink(new OtlpProtoRequestExporter(), resource, { maxExportBatchSize: 512, scheduledDelayMillis: 60_000 });
      const spans = recordedSpans();
      for (const s of spans) sink.record(s);
      expect(received).toHaveLength(0);
      await sink.shutdown();
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ url: '/v1/traces', type: 'application/x-protobuf' });
      expect(received[0]!.body.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => readableSpan(s, resource)))!))).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

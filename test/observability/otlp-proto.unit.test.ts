import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { ExportResult } from '@opentelemetry/core';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, createTraceState, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { OtlpProtoSpanExporter, SpanEncoder } from '../../src/observability/otlp-proto.js';

/** Spans of two processes (resources) and two scopes, using every kind of value OTLP encodes. */
function spans(): ReadableSpan[] {
  const out: ReadableSpan[] = [];
  for (const [i, service] of ['shardwrite-router', 'shardwrite-shard'].entries()) {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service, 'service.instance.id': `shard-${i}`, 'process.pid': 4242 + i }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('shardwrite', '1.0.0');
    const other = provider.getTracer('@opentelemetry/instrumentation-pg', '0.76.0');
    const remote = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
      traceState: createTraceState('vendor=1,other=x'),
    });
    const server = tracer.startSpan('shardwrite.v1.OrderService/PlaceOrder', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': 'PlaceOrder' } }, remote);
    server.setAttributes({
      'shardwrite.ring.epoch': 7,
      'big.int': 2 ** 40 + 3,
      'negative.int': -5,
      'huge.negative': -(2 ** 40),
      'a.double': 0.125,
      'a.bool': false,
      strings: ['a', 'ü', ''],
      numbers: [1, 2.5, -3],
      'non.ascii': 'Grüße — 🚀 ok',
      'long.value': 'x'.repeat(700),
      empty: '',
    });
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
    out.push(...exporter.getFinishedSpans());
  }
  return out;
}

describe('the OTLP protobuf span encoder', () => {
  it('writes exactly the bytes of the maintained serializer, for every kind of value, and again after reusing its buffer and cache', () => {
    const all = spans();
    const encoder = new SpanEncoder();
    const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(all)!);
    expect(expected.length).toBeGreaterThan(20_000);
    expect(Buffer.from(encoder.encode(all)).equals(expected)).toBe(true);
    expect(Buffer.from(encoder.encode(all)).equals(expected)).toBe(true);
    const one = all.slice(0, 1);
    expect(Buffer.from(encoder.encode(one)).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(one)!))).toBe(true);
  });

  it('returns a request of its own: encoding the next one does not change it', () => {
    const all = spans();
    const encoder = new SpanEncoder();
    const first = encoder.encode(all);
    const copy = Buffer.from(first);
    encoder.encode(all.slice(2));
    expect(Buffer.from(first).equals(copy)).toBe(true);
  });
});

describe('the OTLP protobuf exporter', () => {
  it('posts the encoded spans to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces as application/x-protobuf', async () => {
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
      const exporter = new OtlpProtoSpanExporter();
      const all = spans();
      const result = await new Promise<ExportResult>((resolve) => exporter.export(all, resolve));
      await exporter.shutdown();
      expect(result).toEqual({ code: 0 }); // ExportResultCode.SUCCESS
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ url: '/v1/traces', type: 'application/x-protobuf' });
      expect(received[0]!.body.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(all)!))).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

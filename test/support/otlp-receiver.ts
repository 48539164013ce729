/**
 * An OTLP/HTTP trace receiver served by the test itself (JSON or protobuf:
 * point a process at it with `env()`). Keeps every span it received,
 * flattened, with ids as lowercase hex.
 */
import { createServer, type Server } from 'node:http';
import protobuf from 'protobufjs';

export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly events: readonly { name: string; attributes: Record<string, unknown> }[];
  readonly links: readonly { traceId: string; spanId: string }[];
  readonly statusCode: number;
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** The environment that makes a process export its traces here. */
  env(): Record<string, string>;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

const value = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(value);

const attributes = (list: OtlpAttributes): Record<string, unknown> => Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));

/** OTLP JSON ids are hex; some encoders send base64. */
const hex = (id: string | undefined): string => {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
};

/** The part of OTLP's trace.proto the receiver reads (field numbers as in opentelemetry-proto). */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; fixed32 flags = 6; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  repeated Event events = 11; repeated Link links = 13; Status status = 15; fixed32 flags = 16;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const exportRequest = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('ExportTraceServiceRequest');

type ExportRequest = { resourceSpans?: { resource?: { attributes?: OtlpAttributes }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };

/** An OTLP/HTTP request body, JSON or protobuf, as the JSON encoding's objects (ids base64 when protobuf). */
function decodeRequest(type: string, body: Buffer): ExportRequest | undefined {
  if (type.includes('json')) return JSON.parse(body.toString('utf8')) as ExportRequest;
  if (type.includes('protobuf')) return exportRequest.toObject(exportRequest.decode(body), { longs: String, bytes: String, defaults: false });
  return undefined;
}

/**
 * @param protocol what `env()` asks the processes to send
 *   (`OTEL_EXPORTER_OTLP_PROTOCOL`); the receiver reads either. Default: `http/json`.
 */
export async function startOtlpReceiver(protocol: 'http/json' | 'http/protobuf' = 'http/json'): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = String(req.headers['content-type']);
      const body = req.url === '/v1/traces' ? decodeRequest(type, Buffer.concat(chunks)) : undefined;
      if (!body) {
        res.writeHead(415).end();
        return;
      }
      for (const rs of body.resourceSpans ?? []) {
        const name = attributes(rs.resource?.attributes)['service.name'];
        const service = typeof name === 'string' ? name : '';
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              service,
              traceId: hex(s.traceId as string),
              spanId: hex(s.spanId as string),
              parentSpanId: hex(s.parentSpanId as string | undefined),
              name: s.name as string,
              kind: Number(s.kind ?? 0),
              attributes: attributes(s.attributes as OtlpAttributes),
              events: ((s.events as { name: string; attributes?: OtlpAttributes }[] | undefined) ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
              links: ((s.links as { traceId: string; spanId: string }[] | undefined) ?? []).map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId) })),
              statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
            });
          }
        }
      }
      if (type.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    endpoint,
    spans,
    env: () => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      // Export within a fifth of a second, so the test does not wait long.
      OTEL_BSP_SCHEDULE_DELAY: '200',
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

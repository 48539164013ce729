/**
 * OTLP/HTTP protobuf export of spans with a single-pass encoder: the same
 * bytes as `@opentelemetry/otlp-transformer`'s `ProtobufTraceSerializer`
 * (a test compares them), written about twice as fast. Serializing was the
 * largest share of what tracing at 100 % costs a process (~14 of ~21 µs per
 * command in-process, `npm run bench -- tracing`); the transformer walks
 * every span twice (a size estimate, then the write) and copies each string
 * character by character, three times. This encoder writes once, reserving a
 * byte for each length and moving the body when a length needs more; it keeps
 * the encoded bytes of the strings that repeat in every span (attribute keys
 * and values, span, event and scope names: a bounded cache) and writes ids
 * and other strings natively. Transport, retries, headers and the
 * `OTEL_EXPORTER_OTLP_*` settings are the exporter base's, as in the
 * maintained `OTLPTraceExporter`.
 */
import type { Attributes, HrTime, Link, SpanContext } from '@opentelemetry/api';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';

/** Distinct strings whose encoding an encoder keeps. @default 4096 */
const STRING_CACHE_ENTRIES = 4096;
/** Longer strings are encoded each time. @default 512 */
const CACHED_STRING_CHARS = 512;

const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

type Resource = ReadableSpan['resource'];
type Scope = ReadableSpan['instrumentationScope'];

/** Encodes `ExportTraceServiceRequest`s; one per exporter (it reuses its buffer between requests). */
export class SpanEncoder {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #pos = 0;
  readonly #strings = new Map<string, Buffer>();

  /** The request for `spans`, grouped by resource and scope as the transformer groups them. */
  encode(spans: readonly ReadableSpan[]): Uint8Array {
    const byResource = new Map<Resource, Map<Scope, ReadableSpan[]>>();
    for (const span of spans) {
      let scopes = byResource.get(span.resource);
      if (!scopes) byResource.set(span.resource, (scopes = new Map<Scope, ReadableSpan[]>()));
      let list = scopes.get(span.instrumentationScope);
      if (!list) scopes.set(span.instrumentationScope, (list = []));
      list.push(span);
    }
    this.#pos = 0;
    for (const [resource, scopes] of byResource) {
      this.#tag(1, WIRE_BYTES);
      const resourceSpans = this.#start();
      this.#tag(1, WIRE_BYTES);
      const res = this.#start();
      this.#attributes(resource.attributes, 1);
      this.#varintField(2, 0);
      this.#finish(res);
      for (const list of scopes.values()) {
        this.#tag(2, WIRE_BYTES);
        const scopeSpans = this.#start();
        this.#scope(list[0]!.instrumentationScope);
        for (const span of list) {
          this.#tag(2, WIRE_BYTES);
          this.#span(span);
        }
        if (list[0]!.instrumentationScope.schemaUrl) {
          this.#stringField(3, list[0]!.instrumentationScope.schemaUrl);
        }
        this.#finish(scopeSpans);
      }
      if (resource.schemaUrl) {
        this.#stringField(3, resource.schemaUrl);
      }
      this.#finish(resourceSpans);
    }
    // A copy: the request is sent while the next one is encoded into the buffer.
    return Buffer.from(this.#buf.subarray(0, this.#pos));
  }

  #scope(scope: Scope): void {
    this.#tag(1, WIRE_BYTES);
    const at = this.#start();
    this.#stringField(1, scope.name);
    if (scope.version) {
      this.#stringField(2, scope.version);
    }
    const { attributes, droppedAttributesCount } = scope as { attributes?: Attributes; droppedAttributesCount?: number };
    this.#attributes(attributes, 3);
    if (droppedAttributesCount) {
      this.#varintField(4, droppedAttributesCount);
    }
    this.#finish(at);
  }

  #span(span: ReadableSpan): void {
    const at = this.#start();
    const ctx = span.spanContext();
    this.#context(ctx);
    const parent = span.parentSpanContext;
    if (parent?.spanId) {
      this.#idField(4, parent.spanId);
    }
    this.#stringField(5, span.name);
    // OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0.
    this.#varintField(6, span.kind + 1);
    this.#timeField(7, span.startTime);
    this.#timeField(8, span.endTime);
    this.#attributes(span.attributes, 9);
    this.#varintField(10, span.droppedAttributesCount);
    for (const event of span.events) {
      this.#tag(11, WIRE_BYTES);
      const e = this.#start();
      this.#timeField(1, event.time);
      this.#stringField(2, event.name);
      this.#attributes(event.attributes, 3);
      this.#varintField(4, event.droppedAttributesCount ?? 0);
      this.#finish(e);
    }
    this.#varintField(12, span.droppedEventsCount);
    for (const link of span.links) this.#link(link);
    this.#varintField(14, span.droppedLinksCount);
    this.#tag(15, WIRE_BYTES);
    const status = this.#start();
    if (span.status.message) {
      this.#stringField(2, span.status.message);
    }
    this.#varintField(3, span.status.code);
    this.#finish(status);
    this.#tag(16, WIRE_FIXED32);
    this.#fixed32(spanFlags(ctx.traceFlags, parent?.isRemote));
    this.#finish(at);
  }

  #link(link: Link): void {
    this.#tag(13, WIRE_BYTES);
    const at = this.#start();
    const ctx = link.context;
    this.#context(ctx);
    this.#attributes(link.attributes, 4);
    this.#varintField(5, link.droppedAttributesCount ?? 0);
    this.#tag(6, WIRE_FIXED32);
    this.#fixed32(spanFlags(ctx.traceFlags, ctx.isRemote));
    this.#finish(at);
  }

  /** Trace id, span id and trace state: fields 1 to 3 of a span and of a link alike. */
  #context(ctx: SpanContext): void {
    this.#idField(1, ctx.traceId);
    this.#idField(2, ctx.spanId);
    const traceState = ctx.traceState?.serialize();
    if (traceState) {
      this.#stringField(3, traceState);
    }
  }

  #attributes(attributes: Attributes | undefined, field: number): void {
    if (!attributes) return;
    for (const key in attributes) {
      if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
      this.#tag(field, WIRE_BYTES);
      this.#keyValue(key, attributes[key]);
    }
  }

  #keyValue(key: string, value: unknown): void {
    const at = this.#start();
    this.#stringField(1, key);
    this.#tag(2, WIRE_BYTES);
    const v = this.#start();
    this.#anyValue(value);
    this.#finish(v);
    this.#finish(at);
  }

  #anyValue(value: unknown): void {
    if (typeof value === 'string') {
      this.#stringField(1, value);
    } else if (typeof value === 'boolean') {
      this.#varintField(2, value ? 1 : 0);
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
        this.#varintField(3, value);
      } else {
        this.#tag(4, WIRE_FIXED64);
        this.#ensure(8);
        this.#pos = this.#buf.writeDoubleLE(value, this.#pos);
      }
    } else if (value instanceof Uint8Array) {
      this.#tag(7, WIRE_BYTES);
      this.#varint(value.length);
      this.#ensure(value.length);
      this.#buf.set(value, this.#pos);
      this.#pos += value.length;
    } else if (Array.isArray(value)) {
      this.#tag(5, WIRE_BYTES);
      const at = this.#start();
      for (const item of value as unknown[]) {
        this.#tag(1, WIRE_BYTES);
        const i = this.#start();
        this.#anyValue(item);
        this.#finish(i);
      }
      this.#finish(at);
    } else if (typeof value === 'object' && value !== null) {
      this.#tag(6, WIRE_BYTES);
      const at = this.#start();
      const entries = value as Record<string, unknown>;
      for (const key in entries) {
        if (!Object.prototype.hasOwnProperty.call(entries, key)) continue;
        this.#tag(1, WIRE_BYTES);
        this.#keyValue(key, entries[key]);
      }
      this.#finish(at);
    }
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }

  #varintField(field: number, value: number): void {
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
  }

  #timeField(field: number, time: HrTime): void {
    this.#tag(field, WIRE_FIXED64);
    this.#time(time);
  }

  #stringField(field: number, value: string): void {
    this.#tag(field, WIRE_BYTES);
    this.#string(value);
  }

  #idField(field: number, id: string): void {
    this.#tag(field, WIRE_BYTES);
    this.#hex(id);
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  #varint(value: number): void {
    this.#ensure(10);
    const buf = this.#buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.#pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.#pos++] = v;
      return;
    }
    // Negative or beyond 32 bits: the 64-bit two's complement, as protobuf's int64.
    let v = BigInt.asUintN(64, BigInt(Math.trunc(value)));
    while (v > 0x7fn) {
      buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    buf[this.#pos++] = Number(v);
  }

  #fixed32(value: number): void {
    this.#ensure(4);
    this.#pos = this.#buf.writeUInt32LE(value >>> 0, this.#pos);
  }

  /** Nanoseconds since the epoch as a fixed64, exactly (seconds split in 16-bit parts as the transformer does). */
  #time([seconds, nanos]: HrTime): void {
    const lowPart = (seconds & 0xffff) * 1e9;
    const highPart = ((seconds / 0x10000) >>> 0) * 1e9;
    const low = (lowPart >>> 0) + (((highPart & 0xffff) * 0x10000) >>> 0) + nanos;
    const high = (Math.floor(lowPart / 0x100000000) + ((highPart / 0x10000) >>> 0) + Math.floor(low / 0x100000000)) >>> 0;
    this.#ensure(8);
    const buf = this.#buf;
    let p = this.#pos;
    const l = low >>> 0;
    buf[p++] = l & 0xff;
    buf[p++] = (l >>> 8) & 0xff;
    buf[p++] = (l >>> 16) & 0xff;
    buf[p++] = l >>> 24;
    buf[p++] = high & 0xff;
    buf[p++] = (high >>> 8) & 0xff;
    buf[p++] = (high >>> 16) & 0xff;
    buf[p++] = high >>> 24;
    this.#pos = p;
  }

  /** A length-delimited string: its cached encoding (length included) when it repeats. */
  #string(s: string): void {
    let encoded = this.#strings.get(s);
    if (encoded === undefined) {
      const length = Buffer.byteLength(s);
      if (s.length > CACHED_STRING_CHARS || this.#strings.size >= STRING_CACHE_ENTRIES) {
        this.#varint(length);
        this.#ensure(length);
        this.#pos += this.#buf.write(s, this.#pos, length, 'utf8');
        return;
      }
      const prefix = varintSize(length);
      encoded = Buffer.allocUnsafe(prefix + length);
      let v = length;
      let i = 0;
      while (v > 0x7f) {
        encoded[i++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      encoded[i++] = v;
      encoded.write(s, i, length, 'utf8');
      this.#strings.set(s, encoded);
    }
    const n = encoded.length;
    this.#ensure(n);
    if (n > 24) {
      this.#buf.set(encoded, this.#pos);
      this.#pos += n;
    } else {
      for (let i = 0; i < n; i++) this.#buf[this.#pos++] = encoded[i]!;
    }
  }

  /** An id (lowercase hex) as bytes. */
  #hex(id: string): void {
    const n = id.length >>> 1;
    this.#varint(n);
    this.#ensure(n);
    this.#pos += this.#buf.write(id, this.#pos, n, 'hex');
  }

  /** Reserves one byte for a length; `#finish` writes it, moving the body if it needs more. */
  #start(): number {
    this.#ensure(1);
    return this.#pos++;
  }

  #finish(at: number): void {
    const length = this.#pos - at - 1;
    if (length < 0x80) {
      this.#buf[at] = length;
      return;
    }
    const n = varintSize(length);
    this.#ensure(n - 1);
    this.#buf.copyWithin(at + n, at + 1, this.#pos);
    this.#pos += n - 1;
    let v = length;
    let i = at;
    while (v > 0x7f) {
      this.#buf[i++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[i] = v;
  }
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
}

/** The serializer of `SpanEncoder`, answering responses as the maintained exporter does. */
function serializer(): ISerializer<ReadableSpan[], IExportTraceServiceResponse> {
  const encoder = new SpanEncoder();
  return {
    serializeRequest: (spans) => encoder.encode(spans),
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

/**
 * OTLP/HTTP with protobuf, configured like `@opentelemetry/exporter-trace-otlp-proto`'s
 * `OTLPTraceExporter` (the `OTEL_EXPORTER_OTLP_[TRACES_]*` environment), encoding with `SpanEncoder`.
 */
export class OtlpProtoSpanExporter extends OTLPExporterBase<ReadableSpan[]> {
  constructor() {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        serializer(),
        'otlp_http_span_exporter',
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
  }
}

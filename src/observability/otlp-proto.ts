/**
 * OTLP/HTTP protobuf export of spans with a single-pass encoder: a light
 * span (`light-spans.ts`) is encoded as it ends, to the same bytes as
 * `@opentelemetry/otlp-transformer`'s `ProtobufTraceSerializer` writes for
 * it (a test compares them), about twice as fast. Serializing was the
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
import type { Attributes, HrTime, Link, SpanContext, TraceState } from '@opentelemetry/api';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';

/**
 * Distinct strings whose encoding an encoder keeps. Strings that start like
 * a number (a batch's positions: new in every span) are never kept, so the
 * cache holds the names, keys and values that repeat and stays small enough
 * to stay in the CPU's caches. @default 1024
 */
const STRING_CACHE_ENTRIES = 1024;
/** Longer strings are encoded each time. @default 512 */
const CACHED_STRING_CHARS = 512;
/** Distinct key-value pairs whose encoding an encoder keeps (number-like strings never, as above). @default 1024 */
const PAIR_CACHE_ENTRIES = 1024;
/** Pairs with a longer string value, or an integer above this, are encoded each time. @default 64 (characters), 1024 */
const CACHED_PAIR_CHARS = 64;
const CACHED_PAIR_INT = 1024;

const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

type Resource = ReadableSpan['resource'];
type Scope = ReadableSpan['instrumentationScope'];

/**
 * A span as shardwrite's own tracer records it (`LightSpan`), for
 * `SpanEncoder.append`: plain fields, its attributes as alternating keys and
 * values, times in milliseconds since the epoch.
 */
export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState: TraceState | undefined;
  readonly parentSpanId: string | undefined;
  readonly parentIsRemote: boolean | undefined;
  readonly name: string;
  /** `SpanKind` of `@opentelemetry/api`. */
  readonly kind: number;
  readonly startMs: number;
  readonly endMs: number;
  /** Key, value, key, value, … (keys unique). */
  readonly attributes: readonly unknown[];
  readonly droppedAttributesCount: number;
  readonly events: readonly EventRecord[];
  readonly droppedEventsCount: number;
  readonly links: readonly Link[];
  readonly droppedLinksCount: number;
  /** `SpanStatusCode`. */
  readonly statusCode: number;
  readonly statusMessage: string | undefined;
}

/**
 * A span's timed event (`SpanRecord.events`); `ms` since the epoch. Its
 * attributes are `attributes` and, when `lastKey` is set, one more after them
 * (`lastKey` not among `attributes`): a stage's duration, without a set of
 * its own.
 */
export interface EventRecord {
  readonly name: string;
  readonly ms: number;
  readonly attributes: Attributes | undefined;
  readonly droppedAttributesCount: number;
  readonly lastKey: string | undefined;
  readonly lastValue: unknown;
}

/** Milliseconds since the epoch as an `HrTime`, exactly as the encoder writes them. */
export function hrTimeOfMs(ms: number): HrTime {
  let seconds = Math.floor(ms / 1000);
  let nanos = Math.round((ms - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds++;
    nanos -= 1e9;
  }
  return [seconds, nanos];
}

/** Writes the envelope of each request (`SpanEncoder.takeRequest`). */
let requestEncoder: SpanEncoder | undefined;

/** Encodes spans into `ExportTraceServiceRequest`s; one per scope of a sink (it reuses its buffer between requests). */
export class SpanEncoder {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #pos = 0;
  #appended = 0;
  readonly #strings = new Map<string, Buffer>();
  /** Encoded KeyValues by key, then value. */
  readonly #pairs = new Map<string, Map<unknown, Buffer>>();
  #pairCount = 0;

  /** Spans appended (`append`) since the last `takeRequest`. */
  get appended(): number {
    return this.#appended;
  }

  /**
   * Encodes one recorded span now, for the request `takeRequest` returns: its
   * record can be dropped at once. An encoder that appends is used for that
   * alone (`encode` reuses the same buffer).
   */
  append(span: SpanRecord): void {
    this.#tag(2, WIRE_BYTES);
    this.#record(span);
    this.#appended++;
  }

  /**
   * The request of every span appended to `scopes`' encoders since they were
   * last taken, all of one resource, a ScopeSpans per scope in the order
   * given: the bytes the maintained serializer writes for the same spans as
   * `ReadableSpan`s (`readableSpan`) in that order of scopes. Empties them.
   */
  static takeRequest(resource: Resource, scopes: readonly (readonly [Scope, SpanEncoder])[]): Uint8Array {
    const header = (requestEncoder ??= new SpanEncoder());
    header.#pos = 0;
    header.#resourceSpans(resource, () => {
      for (const [scope, encoder] of scopes) {
        header.#scopeSpans(scope, () => header.#raw(encoder.#buf.subarray(0, encoder.#pos)));
        encoder.#pos = 0;
        encoder.#appended = 0;
      }
    });
    return Buffer.from(header.#buf.subarray(0, header.#pos));
  }

  /** A ResourceSpans, whose ScopeSpans `scopes` writes. */
  #resourceSpans(resource: Resource, scopes: () => void): void {
    this.#tag(1, WIRE_BYTES);
    const resourceSpans = this.#start();
    this.#tag(1, WIRE_BYTES);
    const res = this.#start();
    this.#attributes(resource.attributes, 1);
    this.#varintField(2, 0);
    this.#finish(res);
    scopes();
    if (resource.schemaUrl) {
      this.#stringField(3, resource.schemaUrl);
    }
    this.#finish(resourceSpans);
  }

  /** A ScopeSpans, whose spans `spans` writes (each with its tag). */
  #scopeSpans(scope: Scope, spans: () => void): void {
    this.#tag(2, WIRE_BYTES);
    const scopeSpans = this.#start();
    this.#scope(scope);
    spans();
    if (scope.schemaUrl) {
      this.#stringField(3, scope.schemaUrl);
    }
    this.#finish(scopeSpans);
  }

  #raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** A recorded span's Span message, field for field as `#span` writes a `ReadableSpan`. */
  #record(span: SpanRecord): void {
    const at = this.#start();
    this.#idField(1, span.traceId);
    this.#idField(2, span.spanId);
    const traceState = span.traceState?.serialize();
    if (traceState) {
      this.#stringField(3, traceState);
    }
    if (span.parentSpanId) {
      this.#idField(4, span.parentSpanId);
    }
    this.#stringField(5, span.name);
    this.#varintField(6, span.kind + 1);
    this.#msField(7, span.startMs);
    this.#msField(8, span.endMs);
    const attributes = span.attributes;
    for (let i = 0; i < attributes.length; i += 2) {
      this.#tag(9, WIRE_BYTES);
      this.#keyValue(attributes[i] as string, attributes[i + 1]);
    }
    this.#varintField(10, span.droppedAttributesCount);
    for (const event of span.events) {
      this.#tag(11, WIRE_BYTES);
      const e = this.#start();
      this.#msField(1, event.ms);
      this.#stringField(2, event.name);
      this.#attributes(event.attributes, 3);
      if (event.lastKey !== undefined) {
        this.#tag(3, WIRE_BYTES);
        this.#keyValue(event.lastKey, event.lastValue);
      }
      this.#varintField(4, event.droppedAttributesCount);
      this.#finish(e);
    }
    this.#varintField(12, span.droppedEventsCount);
    for (const link of span.links) this.#link(link);
    this.#varintField(14, span.droppedLinksCount);
    this.#tag(15, WIRE_BYTES);
    const status = this.#start();
    if (span.statusMessage) {
      this.#stringField(2, span.statusMessage);
    }
    this.#varintField(3, span.statusCode);
    this.#finish(status);
    this.#tag(16, WIRE_FIXED32);
    this.#fixed32(spanFlags(span.traceFlags, span.parentIsRemote));
    this.#finish(at);
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

  /**
   * A KeyValue, with its length: the cached bytes of the same key and value
   * when they repeat (a stage's attempt, a load's tier, `rpc.system`: most
   * attributes of a command's spans), else written and, while the cache has
   * room, kept.
   */
  #keyValue(key: string, value: unknown): void {
    const cacheable =
      typeof value === 'string'
        ? value.length <= CACHED_PAIR_CHARS && !numberLike(value)
        : typeof value === 'boolean' || (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= CACHED_PAIR_INT);
    if (!cacheable) return this.#writeKeyValue(key, value);
    let byValue = this.#pairs.get(key);
    const cached = byValue?.get(value);
    if (cached !== undefined) return this.#bytes(cached);
    const start = this.#pos;
    this.#writeKeyValue(key, value);
    if (this.#pairCount >= PAIR_CACHE_ENTRIES) return;
    if (!byValue) this.#pairs.set(key, (byValue = new Map<unknown, Buffer>()));
    byValue.set(value, Buffer.from(this.#buf.subarray(start, this.#pos)));
    this.#pairCount++;
  }

  #writeKeyValue(key: string, value: unknown): void {
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

  #msField(field: number, ms: number): void {
    this.#tag(field, WIRE_FIXED64);
    let seconds = Math.floor(ms / 1000);
    let nanos = Math.round((ms - seconds * 1000) * 1e6);
    if (nanos >= 1e9) {
      seconds++;
      nanos -= 1e9;
    }
    this.#time(seconds, nanos);
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
  #time(seconds: number, nanos: number): void {
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
      if (s.length > CACHED_STRING_CHARS || this.#strings.size >= STRING_CACHE_ENTRIES || numberLike(s)) {
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
    this.#bytes(encoded);
  }

  /** Bytes encoded before (a cached string or KeyValue). */
  #bytes(encoded: Buffer): void {
    const n = encoded.length;
    this.#ensure(n);
    if (n > 24) {
      this.#buf.set(encoded, this.#pos);
      this.#pos += n;
    } else {
      const buf = this.#buf;
      let p = this.#pos;
      for (let i = 0; i < n; i++) buf[p++] = encoded[i]!;
      this.#pos = p;
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

/** Whether a string starts like a number (a digit or a minus sign): a position or a count, seldom repeated. */
function numberLike(s: string): boolean {
  const c = s.charCodeAt(0);
  return (c >= 48 && c <= 57) || c === 45;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
}

/**
 * Sends requests already encoded (`SpanEncoder.takeRequest`) over the
 * maintained OTLP/HTTP protobuf exporter's transport: its retries, headers
 * and settings (the `OTEL_EXPORTER_OTLP_[TRACES_]*` environment).
 */
export class OtlpProtoRequestExporter extends OTLPExporterBase<Uint8Array> {
  constructor() {
    const serializer: ISerializer<Uint8Array, IExportTraceServiceResponse> = {
      serializeRequest: (request) => request,
      deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
    };
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        serializer,
        'otlp_http_span_exporter',
        { ...TraceExporterMetricsHelper, countItems: () => 1 },
        undefined,
      ),
    );
  }
}

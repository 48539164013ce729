/**
 * A process's spans (shardwrite's own: a command's at the router and at the
 * shard, a group-commit batch's; and the instrumentations' of grpc-js, pg and
 * ioredis) as flat records, handed whole to a sink when they end: no SDK
 * `Span`, no sanitized copy of each attribute set, no `HrTime` arrays,
 * nothing held until an export. With the OTLP/HTTP protobuf exporter (the
 * default) a span is encoded the moment it ends (`ProtoSpanSink`), so its
 * record dies young; with another exporter it becomes a `ReadableSpan` for
 * the SDK's span processor (`ProcessorSpanSink`). At 100 % sampling the SDK's
 * span and event objects, their copies and the garbage they left were most
 * of what tracing cost a process per command (`npm run bench -- tracing`).
 *
 * `LightTracerProvider` is an OpenTelemetry API `TracerProvider`, its tracers
 * API `Tracer`s and their spans API `Span`s: the propagators, `trace.setSpan`
 * and the maintained instrumentations work with them as with the SDK's. The
 * sampler, span limits, resource and id generator are the SDK provider's, so
 * the standard environment (`OTEL_TRACES_SAMPLER`, `OTEL_SPAN_*_LIMIT`,
 * `OTEL_RESOURCE_ATTRIBUTES`, …) holds for these spans too.
 */
import { isTracingSuppressed } from '@opentelemetry/core';
import {
  INVALID_SPAN_CONTEXT,
  SpanStatusCode,
  TraceFlags,
  context as api,
  diag,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanAttributes,
  type SpanContext,
  type SpanKind,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type TraceState,
  type Tracer,
  type TracerOptions,
  type TracerProvider,
} from '@opentelemetry/api';
import { SamplingDecision, type IdGenerator, type ReadableSpan, type Sampler, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { hrTimeOfMs, SpanEncoder, type EventRecord, type SpanRecord } from './otlp-proto.js';

type Resource = ReadableSpan['resource'];
type Scope = ReadableSpan['instrumentationScope'];

/** Where an ended, sampled span goes (with its tracer's scope, `span.scope`). */
export interface SpanSink {
  record(span: LightSpan): void;
  /** Exports what it holds; resolves when the exports have settled. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The limits a span applies (the SDK provider's resolved `SpanLimits`). */
type Limits = Required<Pick<SpanLimits, 'attributeCountLimit' | 'attributeValueLengthLimit' | 'eventCountLimit' | 'linkCountLimit' | 'attributePerEventCountLimit' | 'attributePerLinkCountLimit'>>;

/** What a `LightTracerProvider` takes from the SDK it runs beside. */
export interface LightTracerOptions {
  readonly sampler: Sampler;
  readonly spanLimits: SpanLimits;
  readonly idGenerator: IdGenerator;
  readonly sink: SpanSink;
}

/** What every span of one tracer shares. */
interface SpanOwner {
  readonly sink: SpanSink;
  readonly limits: Limits;
  readonly scope: Scope;
}

/**
 * The `TracerProvider` of a process whose tracing is on: one `LightTracer`
 * per instrumentation scope, shardwrite's own and each instrumentation's
 * (grpc-js, pg, ioredis), so their spans too are light records encoded as
 * they end, not SDK spans (in a shard at 100 % sampling the SDK's span for
 * the group commit's statement cost more than the batch span above it).
 */
export class LightTracerProvider implements TracerProvider {
  readonly #tracers = new Map<string, LightTracer>();

  constructor(private readonly options: LightTracerOptions) {}

  getTracer(name: string, version?: string, options?: TracerOptions): LightTracer {
    const key = `${name}\n${version ?? ''}\n${options?.schemaUrl ?? ''}`;
    let tracer = this.#tracers.get(key);
    if (!tracer) {
      const scope: Scope = { name, ...(version ? { version } : {}), ...(options?.schemaUrl ? { schemaUrl: options.schemaUrl } : {}) };
      this.#tracers.set(key, (tracer = new LightTracer(this.options, scope)));
    }
    return tracer;
  }
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});
const NO_LINKS: readonly Link[] = Object.freeze([]);
const NO_EVENTS: readonly EventRecord[] = Object.freeze([]);

/** A `Tracer` whose recording spans are `LightSpan`s; see the module documentation. */
export class LightTracer implements Tracer {
  readonly #sampler: Sampler;
  readonly #ids: IdGenerator;
  readonly #owner: SpanOwner;

  constructor(options: LightTracerOptions, scope: Scope) {
    this.#sampler = options.sampler;
    this.#ids = options.idGenerator;
    const l = options.spanLimits;
    const limits: Limits = {
      attributeCountLimit: l.attributeCountLimit ?? 128,
      attributeValueLengthLimit: l.attributeValueLengthLimit ?? Infinity,
      eventCountLimit: l.eventCountLimit ?? 128,
      linkCountLimit: l.linkCountLimit ?? 128,
      attributePerEventCountLimit: l.attributePerEventCountLimit ?? 128,
      attributePerLinkCountLimit: l.attributePerLinkCountLimit ?? 128,
    };
    this.#owner = { sink: options.sink, limits, scope };
  }

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = api.active()): Span {
    // What an exporter does runs with tracing suppressed (the SDK's tracer makes no span there either).
    if (isTracingSuppressed(ctx)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = options.root ? undefined : trace.getSpanContext(ctx);
    const validParent = parent && trace.isSpanContextValid(parent) ? parent : undefined;
    const traceId = validParent?.traceId ?? this.#ids.generateTraceId();
    const spanId = this.#ids.generateSpanId();
    const kind = options.kind ?? 0;
    const links = options.links ?? NO_LINKS;
    const attributes = options.attributes ?? NO_ATTRIBUTES;
    const sampled = this.#sampler.shouldSample(options.root ? trace.deleteSpan(ctx) : ctx, traceId, name, kind, attributes, links as Link[]);
    const traceState = sampled.traceState ?? validParent?.traceState;
    if (sampled.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext({ traceId, spanId, traceFlags: TraceFlags.NONE, ...(traceState ? { traceState } : {}) });
    const flags = sampled.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE;
    const span = new LightSpan(this.#owner, name, kind, traceId, spanId, flags, traceState, validParent, options.startTime);
    if (links.length > 0) span.addLinks(links as Link[]);
    if (options.attributes) span.setAttributes(options.attributes);
    if (sampled.attributes) span.setAttributes(sampled.attributes);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a: SpanOptions | F, b?: Context | F, c?: F): ReturnType<F> {
    const fn = (c ?? (typeof b === 'function' ? b : a)) as F;
    const options = typeof a === 'function' ? {} : a;
    const ctx = typeof b === 'object' ? b : api.active();
    const span = this.startSpan(name, options, ctx);
    return api.with(trace.setSpan(ctx, span), fn as (span: Span) => ReturnType<F>, undefined, span);
  }
}

/**
 * A recording span of `LightTracer`: plain fields, its attributes as
 * alternating keys and values, its events' attribute sets kept as given
 * (copied only when a limit cuts them: callers never change a set they have
 * passed). Times are kept as `performance.now()` readings and anchored, as the
 * SDK's are, to the wall clock when the span starts.
 */
export class LightSpan implements Span, SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState: TraceState | undefined;
  readonly parentSpanId: string | undefined;
  readonly parentIsRemote: boolean | undefined;
  name: string;
  readonly kind: SpanKind;
  readonly startMs: number;
  endMs = 0;
  readonly attributes: unknown[] = [];
  droppedAttributesCount = 0;
  events: EventRecord[] = NO_EVENTS as EventRecord[];
  droppedEventsCount = 0;
  links: Link[] = NO_LINKS as Link[];
  droppedLinksCount = 0;
  statusCode: number = SpanStatusCode.UNSET;
  statusMessage: string | undefined;
  /** Epoch milliseconds of `performance.now()`'s 0, for this span. */
  readonly #origin: number;
  readonly #owner: SpanOwner;
  #context: SpanContext | undefined;
  #ended = false;

  constructor(
    owner: SpanOwner,
    name: string,
    kind: SpanKind,
    traceId: string,
    spanId: string,
    traceFlags: number,
    traceState: TraceState | undefined,
    parent: SpanContext | undefined,
    startTime: TimeInput | undefined,
  ) {
    const now = Date.now();
    this.#origin = now - performance.now();
    this.#owner = owner;
    this.name = name;
    this.kind = kind;
    this.traceId = traceId;
    this.spanId = spanId;
    this.traceFlags = traceFlags;
    this.traceState = traceState;
    this.parentSpanId = parent?.spanId;
    this.parentIsRemote = parent?.isRemote;
    this.startMs = startTime === undefined ? now : this.#ms(startTime);
  }

  /** The instrumentation scope of the tracer that started it. */
  get scope(): Scope {
    return this.#owner.scope;
  }

  spanContext(): SpanContext {
    return (this.#context ??= { traceId: this.traceId, spanId: this.spanId, traceFlags: this.traceFlags, traceState: this.traceState });
  }

  setAttribute(key: string, value: AttributeValue | undefined): this {
    if (this.#ended || value == null || key.length === 0 || !isAttributeValue(value)) return this;
    const attributes = this.attributes;
    for (let i = 0; i < attributes.length; i += 2) {
      if (attributes[i] === key) {
        attributes[i + 1] = this.#truncated(value);
        return this;
      }
    }
    if (attributes.length / 2 >= this.#owner.limits.attributeCountLimit) {
      this.droppedAttributesCount++;
      return this;
    }
    attributes.push(key, this.#truncated(value));
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const key in attributes) {
      if (Object.prototype.hasOwnProperty.call(attributes, key)) this.setAttribute(key, attributes[key]);
    }
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.#ended || !this.#roomForEvent()) return this;
    let attributes: Attributes | undefined;
    if (isTimeInput(attributesOrTime)) time ??= attributesOrTime;
    else attributes = attributesOrTime;
    const kept = attributes ? this.#limited(attributes, this.#owner.limits.attributePerEventCountLimit) : undefined;
    this.events.push({
      name,
      ms: time === undefined ? this.#origin + performance.now() : this.#ms(time),
      attributes: kept?.attributes,
      droppedAttributesCount: kept?.dropped ?? 0,
      lastKey: undefined,
      lastValue: undefined,
    });
    return this;
  }

  addLink(link: Link): this {
    if (this.#ended) return this;
    const limit = this.#owner.limits.linkCountLimit;
    if (limit === 0) {
      this.droppedLinksCount++;
      return this;
    }
    if (this.links === NO_LINKS) this.links = [];
    else if (this.links.length >= limit) {
      this.links.shift();
      this.droppedLinksCount++;
    }
    if (!link.attributes) {
      this.links.push({ context: link.context });
      return this;
    }
    const kept = this.#limited(link.attributes, this.#owner.limits.attributePerLinkCountLimit);
    let count = 0;
    for (const key in kept.attributes) if (Object.prototype.hasOwnProperty.call(kept.attributes, key)) count++;
    this.links.push({ context: link.context, ...(count > 0 ? { attributes: kept.attributes } : {}), ...(kept.dropped > 0 ? { droppedAttributesCount: kept.dropped } : {}) });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.#ended || status.code === SpanStatusCode.UNSET || this.statusCode === (SpanStatusCode.OK as number)) return this;
    this.statusCode = status.code;
    this.statusMessage = status.code === SpanStatusCode.ERROR && typeof status.message === 'string' ? status.message : undefined;
    return this;
  }

  updateName(name: string): this {
    if (!this.#ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.#ended) {
      diag.error(`${this.name} ${this.traceId}-${this.spanId} - You can only call end() on a span once.`);
      return;
    }
    this.#ended = true;
    this.endMs = Math.max(this.startMs, endTime === undefined ? this.#origin + performance.now() : this.#ms(endTime));
    if ((this.traceFlags & TraceFlags.SAMPLED) !== 0) this.#owner.sink.record(this);
  }

  isRecording(): boolean {
    return !this.#ended;
  }

  /**
   * A stage's timed event (`stageEvents`): the event `addEvent(name, { ...attributes,
   * [durationKey]: durationMs }, time)` records, without building that set.
   * `time` is a `performance.now()` reading.
   */
  addStage(name: string, time: number, attributes: Attributes | undefined, durationKey: string, durationMs: number): void {
    if (this.#ended || this.#owner.limits.eventCountLimit === 0 || (attributes && Object.prototype.hasOwnProperty.call(attributes, durationKey))) {
      this.addEvent(name, { ...attributes, [durationKey]: durationMs }, time);
      return;
    }
    const kept = attributes ? this.#limited(attributes, this.#owner.limits.attributePerEventCountLimit - 1) : undefined;
    if (kept && kept.dropped > 0) {
      this.addEvent(name, { ...attributes, [durationKey]: durationMs }, time);
      return;
    }
    this.#roomForEvent();
    this.events.push({ name, ms: time <= performance.now() ? this.#origin + time : time, attributes: kept?.attributes, droppedAttributesCount: 0, lastKey: durationKey, lastValue: durationMs });
  }

  /**
   * Makes room for one more event within the limit, dropping the oldest when
   * full (counted); false when the limit is 0 (the event is dropped, counted).
   */
  #roomForEvent(): boolean {
    const limit = this.#owner.limits.eventCountLimit;
    if (limit === 0) {
      this.droppedEventsCount++;
      return false;
    }
    if (this.events === NO_EVENTS) this.events = [];
    else if (this.events.length >= limit) {
      this.events.shift();
      this.droppedEventsCount++;
    }
    return true;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      const type = exception.code !== undefined ? String(exception.code) : exception.name;
      if (type) attributes['exception.type'] = type;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    if (attributes['exception.type'] || attributes['exception.message']) this.addEvent('exception', attributes, time);
  }

  /** Epoch milliseconds of a time input (a `performance.now()` reading, epoch milliseconds, a Date or an HrTime). */
  #ms(time: TimeInput): number {
    if (typeof time === 'number') return time <= performance.now() ? this.#origin + time : time;
    if (time instanceof Date) return time.getTime();
    return time[0] * 1000 + time[1] / 1e6;
  }

  #truncated(value: AttributeValue): AttributeValue {
    const limit = this.#owner.limits.attributeValueLengthLimit;
    if (typeof value === 'string') return value.length > limit ? value.slice(0, limit) : value;
    if (Array.isArray(value) && value.some((v) => typeof v === 'string' && v.length > limit))
      return (value as unknown[]).map((v) => (typeof v === 'string' && v.length > limit ? v.slice(0, limit) : v)) as AttributeValue;
    return value;
  }

  /** An event's or link's attributes within the limits: the set itself when nothing needs cutting. */
  #limited(attributes: Attributes, countLimit: number): { attributes: Attributes; dropped: number } {
    const limit = this.#owner.limits.attributeValueLengthLimit;
    let count = 0;
    let clean = true;
    for (const key in attributes) {
      if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
      const value = attributes[key];
      count++;
      if (typeof value === 'string' ? value.length > limit : typeof value !== 'number' && typeof value !== 'boolean' && (value == null || !isAttributeValue(value) || this.#truncated(value) !== value))
        clean = false;
    }
    if (clean && count <= countLimit) return { attributes, dropped: 0 };
    const kept: Attributes = {};
    let n = 0;
    let dropped = 0;
    for (const key in attributes) {
      if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
      const value = attributes[key];
      if (value == null || !isAttributeValue(value)) continue;
      if (n >= countLimit) {
        dropped++;
        continue;
      }
      kept[key] = this.#truncated(value);
      n++;
    }
    return { attributes: kept, dropped };
  }
}

function isTimeInput(value: unknown): value is TimeInput {
  return typeof value === 'number' || value instanceof Date || (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'number');
}

/** An attribute value OpenTelemetry accepts: a string, number or boolean, or an array of one of them (with nulls). */
function isAttributeValue(value: unknown): value is AttributeValue {
  const t = typeof value;
  if (t === 'string' || t === 'number' || t === 'boolean') return true;
  if (!Array.isArray(value)) return false;
  let type: string | undefined;
  for (const v of value as unknown[]) {
    if (v == null) continue;
    const vt = typeof v;
    if (vt !== 'string' && vt !== 'number' && vt !== 'boolean') return false;
    if (type === undefined) type = vt;
    else if (vt !== type) return false;
  }
  return true;
}

/** A `LightSpan` as the SDK's exporters read a span. */
export function readableSpan(span: LightSpan, resource: Resource): ReadableSpan {
  const ctx = span.spanContext();
  const startTime = hrTimeOfMs(span.startMs);
  const endTime = hrTimeOfMs(span.endMs);
  const attributes: Attributes = {};
  for (let i = 0; i < span.attributes.length; i += 2) attributes[span.attributes[i] as string] = span.attributes[i + 1] as AttributeValue;
  const durationMs = span.endMs - span.startMs;
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => ctx,
    ...(span.parentSpanId
      ? { parentSpanContext: { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: span.traceFlags, ...(span.parentIsRemote !== undefined ? { isRemote: span.parentIsRemote } : {}) } }
      : {}),
    startTime,
    endTime,
    status: { code: span.statusCode, ...(span.statusMessage !== undefined ? { message: span.statusMessage } : {}) },
    attributes,
    links: span.links,
    events: span.events.map((e) => ({
      name: e.name,
      time: hrTimeOfMs(e.ms),
      attributes: e.lastKey === undefined ? (e.attributes ?? {}) : { ...e.attributes, [e.lastKey]: e.lastValue as AttributeValue },
      droppedAttributesCount: e.droppedAttributesCount,
    })),
    duration: hrTimeOfMs(durationMs),
    ended: true,
    resource,
    instrumentationScope: span.scope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** How a sink batches its exports (`OTEL_BSP_*`, as the SDK's batch span processor reads them). */
export interface BatchOptions {
  /** Spans in one export request. @default 512 */
  readonly maxExportBatchSize: number;
  /** The longest a span waits for its export, in milliseconds. @default 5000 */
  readonly scheduledDelayMillis: number;
}

/** Sends encoded requests (`OtlpProtoRequestExporter`). */
export interface RequestExporter {
  export(request: Uint8Array, done: (result: { error?: Error }) => void): void;
  shutdown(): Promise<void>;
}

/**
 * Encodes each span into the next OTLP protobuf request as it ends, and sends
 * the request when it holds `maxExportBatchSize` spans or its first span has
 * waited `scheduledDelayMillis`. A request that cannot be sent (the exporter's
 * limit of concurrent exports reached, the endpoint down) is dropped, as the
 * SDK's processor drops spans beyond its queue: memory stays bounded.
 */
export class ProtoSpanSink implements SpanSink {
  /** An encoder per scope, and the scopes with spans in the next request, in the order of their first. */
  readonly #encoders = new Map<Scope, SpanEncoder>();
  #scopes: [Scope, SpanEncoder][] = [];
  #appended = 0;
  readonly #pending = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly exporter: RequestExporter,
    private readonly resource: Resource,
    private readonly batch: BatchOptions,
  ) {}

  record(span: LightSpan): void {
    if (this.#closed) return;
    const scope = span.scope;
    let encoder = this.#encoders.get(scope);
    if (!encoder) this.#encoders.set(scope, (encoder = new SpanEncoder()));
    if (encoder.appended === 0) this.#scopes.push([scope, encoder]);
    encoder.append(span);
    if (++this.#appended >= this.batch.maxExportBatchSize) this.#send();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#send(), this.batch.scheduledDelayMillis);
      this.#timer.unref();
    }
  }

  async flush(): Promise<void> {
    this.#send();
    await Promise.all(this.#pending);
  }

  async shutdown(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.exporter.shutdown();
  }

  #send(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#appended === 0) return;
    const request = SpanEncoder.takeRequest(this.resource, this.#scopes);
    this.#scopes = [];
    this.#appended = 0;
    const sent = new Promise<void>((resolve) =>
      this.exporter.export(request, (result) => {
        if (result.error) diag.warn(`exporting spans failed: ${result.error.message}`);
        resolve();
      }),
    );
    this.#pending.add(sent);
    void sent.then(() => this.#pending.delete(sent));
  }
}

/** Hands each span, as a `ReadableSpan`, to an SDK span processor (another exporter than OTLP protobuf). */
export class ProcessorSpanSink implements SpanSink {
  constructor(
    private readonly processor: SpanProcessor,
    private readonly resource: Resource,
  ) {}

  record(span: LightSpan): void {
    this.processor.onEnd(readableSpan(span, this.resource));
  }

  flush(): Promise<void> {
    return this.processor.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.flush();
  }
}

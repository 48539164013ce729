/**
 * Tracing of the command path with OpenTelemetry: what the processes use
 * while handling commands. Only `@opentelemetry/api` is loaded here; the SDK,
 * its exporter and the instrumentations are loaded by `startTracing` (in
 * `tracing-sdk.ts`) and only when the environment asks for traces. Off, the
 * composition roots get no tracer, and every traced path is skipped behind
 * one `undefined` check: no span, no context, nothing extra on the link.
 *
 * One trace per command, continuing the caller's W3C `traceparent`:
 * the router's span (`CLIENT`: the hop over the link, with the shard it
 * chose and the ring epoch), carried per command inside the link batch as
 * the frame's own `traceparent` header; the shard's span (`SERVER`) with a
 * timed event per stage (validated, authorized, queue, load with its
 * tier, decide, append, conflict retries); one span per group-commit batch,
 * a child of its first traced command's span and linked to every command
 * span it serves, with the PostgreSQL spans under it. Two spans per command
 * and a share of its batch's: at 100 % sampling every span is paid for
 * (`npm run bench -- tracing`). The router's sampling decision holds for the
 * whole command: one it does not sample costs a non-recording span at the
 * router and nothing at the shard (`UNSAMPLED`), and its events record the
 * caller's own `traceparent`, as untraced.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';

export { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace, type Context, type Span, type SpanContext, type Tracer };

/** The instrumentation scope of shardwrite's own spans. */
export const TRACER_NAME = 'shardwrite';

/** Metadata keys of W3C trace context (a caller's; on a link frame, the router's span). */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/**
 * The link header (value `1`) of a command whose span at the router was not
 * sampled: the shard makes no span for it either, so one sampling decision,
 * the router's, holds for the whole trace whatever the shards' samplers are,
 * and an unsampled command costs neither process a span. The frame carries the
 * caller's own `traceparent` instead, which its events record (as untraced).
 * Set only by a router: a caller's entry of this name is dropped.
 */
export const UNSAMPLED = 'x-shardwrite-unsampled';

/**
 * Whether the environment asks for traces: an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
 * an explicit `OTEL_TRACES_EXPORTER` other than `none`, and not
 * `OTEL_SDK_DISABLED=true`. Unlike the SDK's own default (OTLP to
 * localhost:4318), nothing is exported unless asked for.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporter = (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase();
  if (exporter === 'none') return false;
  return exporter !== '' || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** A process's tracing: its tracer (undefined when off) and how to flush and stop it. */
export interface Tracing {
  readonly tracer: Tracer | undefined;
  /** Exports what is buffered and stops; resolves (never rejects) within a few seconds. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = { tracer: undefined, shutdown: () => Promise.resolve() };

/** Who this process is in the traces (`service.name` unless OTEL_SERVICE_NAME says otherwise). */
export interface TracedProcess {
  readonly serviceName: string;
  /** `service.instance.id` (a shard's id); default: none. */
  readonly instanceId?: string;
}

/**
 * Starts tracing when the environment asks for it (`tracingRequested`), before
 * the process loads its gRPC, PostgreSQL and Redis clients: the SDK patches
 * them (grpc-js, pg, ioredis instrumentations) as they load. Returns
 * `TRACING_OFF` otherwise, having loaded nothing.
 *
 * @throws Error when the environment asks for an exporter or sampler this build does not have.
 */
export async function startTracing(env: NodeJS.ProcessEnv, process: TracedProcess): Promise<Tracing> {
  if (!tracingRequested(env)) return TRACING_OFF;
  const { startSdk } = await import('./tracing-sdk.js');
  return startSdk(env, process, TRACER_NAME);
}

/** A `traceparent` as W3C trace context reads it (`@opentelemetry/core`'s pattern: any version but ff, ids not all zeros). */
const TRACEPARENT_PATTERN = /^\s?((?!ff)[\da-f]{2})-((?![0]{32})[\da-f]{32})-((?![0]{16})[\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;

/**
 * The trace context a caller sent (its `traceparent` / `tracestate`, read
 * as the W3C trace-context propagator reads them), as the parent of what the
 * process does for it; `ROOT_CONTEXT` when it sent none that is valid. Read
 * here rather than through the global propagator: it is on every traced
 * command's path, in the router and again in the shard.
 */
export function extractContext(read: (key: string) => string | undefined): Context {
  const value = read(TRACEPARENT);
  const m = value === undefined ? null : TRACEPARENT_PATTERN.exec(value);
  // Version 00 has exactly four fields; a later version may have more.
  if (!m || (m[1] === '00' && m[5])) return ROOT_CONTEXT;
  return remoteParent(m[2]!, m[3]!, parseInt(m[4]!, 16), read(TRACESTATE));
}

/**
 * What `extractContext` reads from a `traceparent` that `validTraceparent`
 * already accepted (version 00, exactly its fields) and the caller's
 * `tracestate`, without matching it again: a shard checks every command's
 * `traceparent` for its events' metadata anyway.
 */
export function parentOf(traceparent: string, state: string | undefined): Context {
  return remoteParent(traceparent.slice(3, 35), traceparent.slice(36, 52), parseInt(traceparent.slice(53, 55), 16), state);
}

function remoteParent(traceId: string, spanId: string, traceFlags: number, state: string | undefined): Context {
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags, isRemote: true, ...(state ? { traceState: createTraceState(state) } : {}) });
}

/** The `traceparent` of a span context (W3C, version 00). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) !== 0 ? '01' : '00'}`;
}

/** `value` when it is a well-formed W3C `traceparent`, else undefined (it is input: stored only when valid). */
export function validTraceparent(value: string | undefined): string | undefined {
  // At its length (version 00's), the W3C pattern admits no padding and no further fields.
  return value !== undefined && value.length === 55 && TRACEPARENT_PATTERN.test(value) ? value : undefined;
}

/** The ids a log line carries to join its trace (pino fields). */
export function traceFields(span: Span | undefined): { trace_id: string; span_id: string } | undefined {
  if (!span) return undefined;
  const sc = span.spanContext();
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/** The ids of the span active in the current context, for a logger's mixin; {} outside any. */
export function activeTraceFields(): { trace_id?: string; span_id?: string } {
  return traceFields(trace.getActiveSpan()) ?? {};
}

/** Ends a span with an error status naming `err`'s class and reason (never its message: it may quote input). */
export function endWithError(span: Span, err: unknown): void {
  const reason = (err as { reason?: unknown }).reason;
  span.setStatus({ code: SpanStatusCode.ERROR, message: typeof reason === 'string' ? reason : ((err as Error)?.name ?? 'Error') });
  span.end();
}

const rpcAttributesByName = new Map<string, Attributes>();

/**
 * The semantic-convention attributes of an RPC span (`rpc.system`,
 * `rpc.service`, `rpc.method`) for a full method name
 * (`shardwrite.v1.OrderService/PlaceOrder`), computed once per method: the
 * names come from the proto definitions, a fixed set.
 */
export function rpcAttributes(rpc: string): Attributes {
  let attributes = rpcAttributesByName.get(rpc);
  if (!attributes) {
    const slash = rpc.lastIndexOf('/');
    attributes = Object.freeze({ 'rpc.system': 'grpc', 'rpc.service': rpc.slice(0, slash), 'rpc.method': rpc.slice(slash + 1) });
    rpcAttributesByName.set(rpc, attributes);
  }
  return attributes;
}

/**
 * Starts an RPC span and, only when it records, gives it its attributes: an
 * unsampled command pays for a non-recording span and nothing else.
 * (The samplers of `OTEL_TRACES_SAMPLER` decide without attributes.)
 */
export function startRpcSpan(tracer: Tracer, rpc: string, kind: SpanKind, parent: Context): Span {
  const span = tracer.startSpan(rpc, { kind }, parent);
  if (span.isRecording()) span.setAttributes(rpcAttributes(rpc));
  return span;
}

/** The attribute of a stage event that holds the stage's duration in milliseconds. */
export const STAGE_DURATION = 'shardwrite.stage.duration_ms';

/** A span that records a stage's event without a set of attributes of its own (`LightSpan`). */
interface StageRecorder {
  addStage(name: string, time: number, attributes: Attributes | undefined, durationKey: string, durationMs: number): void;
}

/**
 * A stage that several commands went through together (one load, one
 * decide for the commands of one stream), as a timed event on each
 * recording span in `spans`: named after the stage, at its end, with its
 * duration (`shardwrite.stage.duration_ms`; `start` and `end` are
 * `performance.now()` times) and `attributes`. An event costs a fraction of
 * a child span (no ids, no export record of its own).
 */
export function stageEvents(spans: readonly (Span | undefined)[], name: string, start: number, end: number, attributes?: Attributes): void {
  const durationMs = Math.round((end - start) * 1000) / 1000;
  let all: Attributes | undefined;
  for (const span of spans) {
    if (!span?.isRecording()) continue;
    if (typeof (span as Partial<StageRecorder>).addStage === 'function') {
      (span as unknown as StageRecorder).addStage(name, end, attributes, STAGE_DURATION, durationMs);
      continue;
    }
    all ??= { ...attributes, [STAGE_DURATION]: durationMs };
    span.addEvent(name, all, end);
  }
}

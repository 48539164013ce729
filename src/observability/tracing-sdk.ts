/**
 * The OpenTelemetry SDK of a process, loaded only when tracing is asked for
 * (`tracing.ts`, `startTracing`): a NodeTracerProvider with the sampler of
 * `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default parent-based
 * always-on), a batch span processor (`OTEL_BSP_*`), the OTLP/HTTP exporter
 * (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `_TIMEOUT`; protobuf,
 * or JSON with `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/json`) or, with
 * `OTEL_TRACES_EXPORTER=console`, stdout; W3C trace context and baggage
 * propagation, and the maintained instrumentations of grpc-js, pg and
 * ioredis. Every span, shardwrite's own and the instrumentations', is a
 * light record (`LightTracerProvider`, light-spans.ts) with that provider's
 * sampler, limits, ids and resource, exported through its own sink: with
 * OTLP protobuf each span is encoded as it ends, otherwise it goes to the
 * batch processor.
 */
import { createRequire } from 'node:module';
import { ROOT_CONTEXT, context, diag, DiagLogLevel, propagation, trace, type Context, type ContextManager, type DiagLogger } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, type IdGenerator, type Sampler, type SpanExporter, type SpanLimits } from '@opentelemetry/sdk-trace-node';
import { LightTracerProvider, ProcessorSpanSink, ProtoSpanSink, type BatchOptions, type SpanSink } from './light-spans.js';
import { OtlpProtoRequestExporter } from './otlp-proto.js';
import type { TracedProcess, Tracing } from './tracing.js';

/**
 * gRPC methods the grpc-js instrumentation leaves alone: long-lived streams
 * whose commands get spans of their own (a caller's command stream, the
 * router's link), and health and reflection traffic.
 */
const UNTRACED_GRPC_METHODS = ['Execute', 'Check', 'Watch', 'ServerReflectionInfo'];

/** Spans in one export request of shardwrite's own spans, unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise (the SDK's default). @default 512 */
export const MAX_EXPORT_BATCH_SIZE = 512;

/** The longest one of shardwrite's own spans waits for its export, unless OTEL_BSP_SCHEDULE_DELAY says otherwise (the SDK's default). @default 5000 */
export const SCHEDULE_DELAY_MS = 5000;

/** How long `shutdown` waits for the last export. @default 3000 */
const SHUTDOWN_TIMEOUT_MS = 3000;

/**
 * The longest string attribute value a span keeps (longer ones are cut),
 * unless `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` or
 * `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` says otherwise (the SDK's own default
 * is no limit). Only a statement's `db.query.text` comes near it: the group
 * commit's statement is 3 KB of SQL, exported with every batch and named by
 * its prepared statement (`db.postgresql.plan`, the span's name) anyway.
 * @default 256
 */
export const ATTRIBUTE_VALUE_LENGTH_LIMIT = 256;

/** Starts the SDK; see the module documentation. @throws Error for an exporter or protocol this build does not have. */
export async function startSdk(env: NodeJS.ProcessEnv, process: TracedProcess, tracerName: string): Promise<Tracing> {
  const kind = exporterKind(env);
  const defaults = resourceFromAttributes({
    'service.name': process.serviceName,
    'service.namespace': 'shardwrite',
    ...(process.instanceId ? { 'service.instance.id': process.instanceId } : {}),
  });
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults.
  const resource = defaults.merge(detectResources({ detectors: [envDetector] }));
  const limitFromEnv = env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT || env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT;
  // The SDK's provider reads the sampler, limits and ids from the environment; it makes no span itself.
  const processor = kind === 'otlp-protobuf' ? undefined : new BatchSpanProcessor(await spanExporter(kind));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: processor ? [processor] : [],
    ...(limitFromEnv ? {} : { spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LENGTH_LIMIT } }),
  });
  const sdkTracer = provider.getTracer(tracerName) as unknown as Partial<SdkTracerInternals>;
  if (!sdkTracer._sampler || !sdkTracer._spanLimits || !sdkTracer._idGenerator)
    throw new Error('@opentelemetry/sdk-trace-node: its Tracer no longer exposes its sampler, span limits and id generator');
  const sink: SpanSink = processor ? new ProcessorSpanSink(processor, resource) : new ProtoSpanSink(new OtlpProtoRequestExporter(), resource, batchOptions(env));
  const tracers = new LightTracerProvider({ sampler: sdkTracer._sampler, spanLimits: sdkTracer._spanLimits, idGenerator: sdkTracer._idGenerator, sink });
  // What NodeTracerProvider.register sets up, with the light provider and a synchronous context.
  trace.setGlobalTracerProvider(tracers);
  context.setGlobalContextManager(new SynchronousContextManager());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  diag.setLogger(stderrDiag, DiagLogLevel.WARN);
  const instrumentations = registerInstrumentations({
    tracerProvider: tracers,
    instrumentations: [
      new GrpcInstrumentation({ ignoreGrpcMethods: UNTRACED_GRPC_METHODS }),
      // Only the statement (parameters are never recorded), no span for a query outside any trace, and
      // none for opening a connection (the writer's is opened once and kept).
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false, ignoreConnectSpans: true }),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
    ],
  });
  // The instrumentations patch these modules as they are required; the process's own ESM imports
  // then find them in the require cache, patched (their prototypes are patched in place even if
  // something loaded them before).
  const require = createRequire(import.meta.url);
  for (const name of ['@grpc/grpc-js', 'pg', 'ioredis']) require(name);
  return {
    tracer: tracers.getTracer(tracerName),
    async shutdown() {
      instrumentations();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        sink
          .shutdown()
          .catch(() => {})
          .then(() => provider.shutdown())
          .catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/**
 * The active context only for the synchronous extent of `context.with`.
 * The SDK's default, AsyncLocalStorage, follows every promise and async
 * resource, which on Node 20 cost the promise-heavy shards about a third
 * more CPU per command even with nothing sampled (`npm run bench -- tracing`:
 * ~162 → ~214 µs; with this manager ~108 → ~119 µs, within noise).
 * shardwrite does not need it: it binds contexts explicitly where a span
 * starts (a command's span to its frame, a batch's span around its
 * statement), and the instrumentations read the active context synchronously
 * where they start theirs (a gRPC handler is called, a query is sent). What
 * runs later, after an await, runs outside any trace: a pg or ioredis call
 * there makes no span (`requireParentSpan`) rather than one under whichever
 * command happened to start it.
 */
export class SynchronousContextManager implements ContextManager {
  #active: Context = ROOT_CONTEXT;

  active(): Context {
    return this.#active;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const previous = this.#active;
    this.#active = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#active = previous;
    }
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    const run = <R>(work: () => R): R => this.with(context, work);
    return function (this: unknown, ...args: unknown[]) {
      return run(() => fn.apply(this, args));
    } as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#active = ROOT_CONTEXT;
    return this;
  }
}

/** What the SDK Tracer keeps of its provider's configuration (private in its types, fields in its build). */
interface SdkTracerInternals {
  readonly _sampler: Sampler;
  readonly _spanLimits: SpanLimits;
  readonly _idGenerator: IdGenerator;
}

type ExporterKind = 'otlp-protobuf' | 'otlp-json' | 'console';

/** The exporter the environment names (OTLP over HTTP with protobuf by default). */
function exporterKind(env: NodeJS.ProcessEnv): ExporterKind {
  const kind = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',')[0]!.trim().toLowerCase() || 'otlp';
  if (kind === 'console') return 'console';
  if (kind !== 'otlp') throw new Error(`OTEL_TRACES_EXPORTER=${kind} is not supported (otlp, console or none)`);
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
  if (protocol === 'http/json') return 'otlp-json';
  if (protocol === 'http/protobuf') return 'otlp-protobuf';
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported (http/protobuf or http/json)`);
}

/** The exporter of the kinds that go through the SDK's batch processor (OTLP protobuf has its own sink). */
async function spanExporter(kind: Exclude<ExporterKind, 'otlp-protobuf'>): Promise<SpanExporter> {
  if (kind === 'console') return new ConsoleSpanExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
}

/** `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and `OTEL_BSP_SCHEDULE_DELAY`, as the SDK's batch span processor reads them. */
export function batchOptions(env: NodeJS.ProcessEnv): BatchOptions {
  const positive = (name: string, fallback: number) => {
    const n = Number(env[name]);
    return env[name]?.trim() && Number.isFinite(n) && n > 0 ? n : fallback;
  };
  return { maxExportBatchSize: positive('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', MAX_EXPORT_BATCH_SIZE), scheduledDelayMillis: positive('OTEL_BSP_SCHEDULE_DELAY', SCHEDULE_DELAY_MS) };
}

/** OpenTelemetry's own warnings (an export that failed), on stderr as one line each. */
const stderrDiag: DiagLogger = {
  error: (message, ...args) => console.error(`opentelemetry: ${message}`, ...args),
  warn: (message, ...args) => console.error(`opentelemetry: ${message}`, ...args),
  info: () => {},
  debug: () => {},
  verbose: () => {},
};

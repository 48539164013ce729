/**
 * Pipelined commands over long-lived bidirectional streams, on the shard:
 *
 * - `shardwrite.v1.CommandStreamService/Execute`, the public API: a caller's
 *   StreamedCommands in, StreamedOutcomes out;
 * - `shardwrite.internal.v1.ShardLink/Execute`, a router's link: batches of
 *   frames, each an encoded StreamedCommand with the caller's deadline and
 *   metadata, answered by batches of encoded StreamedOutcomes. The router
 *   sends every caller's commands for this shard, unary and streamed, here.
 *
 * Each command runs through the same pipeline as a unary call and gets
 * exactly one outcome; commands of one aggregate keep their order (they enter
 * its mailbox in arrival order). A frame that does not decode fails alone.
 * Memory is bounded: a caller's stream has at most `maxInFlight` commands
 * executing (beyond that: OVERLOADED outcomes; a link is bounded by the
 * pipeline's own admission instead), and reading stops while the peer is not
 * reading its outcomes, so HTTP/2 flow control slows it down.
 */
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { CommandSpec, DomainModule } from '../src/domain/module.js';
import { CALLER_KEY, callerKey } from '../src/auth/identity.js';
import { OverloadedError, ShardUnavailableError, ValidationError, asError } from '../src/errors.js';
import { NO_HEADERS, decodeBatch, decodeHeaders, encodeBatch, type DecodedFrame, type LinkFrame } from '../src/grpc/link-codec.js';
import type { LinkDefinition } from '../src/grpc/proto.js';
import { packedMethods, streamedMembers, typeNameOf } from '../src/grpc/packed.js';
import { isUnexpected, toRpcStatus, toStatusMessage } from '../src/grpc/status.js';
import { toWireResult } from '../src/grpc/wire.js';
import { stringFieldOr } from '../src/grpc/wire-scan.js';
import type { Logger } from '../src/observability/logger.js';
import { SpanKind, SpanStatusCode, TRACESTATE, UNSAMPLED, extractContext, parentOf, startRpcSpan, traceFields, type Context, type Span, type Tracer } from '../src/observability/tracing.js';
import type { PipelineMetrics } from '../src/observability/metrics.js';
import type { CallContext, CommandPipeline } from '../src/pipeline/pipeline.js';
import type { StreamedCommand__Output } from '../src/generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome } from '../src/generated/shardwrite/v1/StreamedOutcome.js';
import { callContext, contextOf, messageTooLarge, rawRequests, undecodable } from './grpc-services.js';

export interface CommandStreamDeps {
  readonly definition: PackageDefinition;
  readonly link: LinkDefinition;
  readonly modules: readonly DomainModule[];
  readonly pipeline: CommandPipeline;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
  /** Largest message of a caller's stream (a router's link batches may be larger). */
  readonly maxMessageBytes: number;
  /** Commands executing at once per caller's stream; default 1024. */
  readonly maxInFlight: number;
  /** Retry hint for OVERLOADED outcomes. */
  readonly overloadRetryAfterMs: number;
  /** Traces each command (a span per command, a child of its frame's or stream's trace context); default: off. */
  readonly tracer?: Tracer;
}

/** Lets the shard's shutdown stop the open streams gracefully. */
export interface CommandStreams {
  /**
   * From now on, commands arriving on open streams are answered UNAVAILABLE
   * (SHARD_UNAVAILABLE); each stream ends once its in-flight commands have
   * their outcomes, so the server's shutdown is not held by idle streams.
   */
  drain(): void;
}

type Duplex = grpc.ServerDuplexStream<Buffer, unknown>;

/** One open stream: its commands in flight, and its end once they are answered. */
class OpenStream {
  inFlight = 0;
  ended = false;
  draining = false;
  finished = false;
  #waitingForDrain = false;

  constructor(readonly call: Duplex) {}

  /** Writes one message; while the peer is not reading, stops reading its commands. */
  write(message: unknown): void {
    if (this.call.cancelled || this.call.destroyed) return;
    if (!this.call.write(message) && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.call.pause();
      this.call.once('drain', () => {
        this.#waitingForDrain = false;
        this.call.resume();
      });
    }
  }

  finishIfDone(): void {
    if ((this.ended || this.draining) && this.inFlight === 0 && !this.call.destroyed && !this.finished) {
      this.finished = true;
      this.call.end();
    }
  }
}

export function addCommandStreamService(server: grpc.Server, deps: CommandStreamDeps): CommandStreams {
  const original = deps.definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition;
  const execute_ = original.Execute!;
  // Frames are decoded one by one in the handler, so a frame that does not
  // decode fails alone instead of ending the stream.
  const raw = rawRequests(execute_);
  const decode = raw.decode as (b: Buffer) => StreamedCommand__Output;
  const encode = execute_.responseSerialize as (o: StreamedOutcome) => Buffer;
  const specs = streamedCommands(deps.definition, deps.modules);
  const open = new Set<OpenStream>();
  let draining = false;
  const track = (call: Duplex): OpenStream => {
    const stream = new OpenStream(call);
    stream.draining = draining;
    open.add(stream);
    call.once('close', () => open.delete(stream));
    call.on('end', () => {
      stream.ended = true;
      stream.finishIfDone();
    });
    call.on('error', (err) => deps.logger.debug({ err }, 'command stream closed by the peer'));
    return stream;
  };
  const run = (stream: OpenStream, frame: Buffer, ctx: TracedContext, maxInFlight: number, answer: (o: StreamedOutcome) => void) =>
    runFrame(deps, specs, decode, stream, frame, ctx, maxInFlight, answer);
  // The traceparent `contextOf` accepted for the events' metadata is read as it is; another (a later version's) is read in full.
  const traced = (ctx: CallContext, text: (key: string) => string | undefined): TracedContext =>
    deps.tracer ? { ...ctx, traceParent: ctx.traceparent !== undefined ? parentOf(ctx.traceparent, text(TRACESTATE)) : extractContext(text) } : ctx;

  server.addService(
    { Execute: raw.definition },
    {
      Execute: (call: Duplex) => {
        const stream = track(call);
        const ctx = traced(callContext(call), (key) => {
          const v = call.metadata.get(key)[0];
          return typeof v === 'string' ? v : undefined;
        });
        const answer = (o: StreamedOutcome) => stream.write(o);
        call.on('data', (frame: Buffer) => {
          if (stream.finished) return;
          if (frame.length > deps.maxMessageBytes) {
            // As grpc-js ends a stream whose message is over its limit.
            stream.finished = true;
            call.emit('error', messageTooLarge(frame.length, deps.maxMessageBytes));
            return;
          }
          run(stream, frame, ctx, deps.maxInFlight, answer);
        });
      },
    },
  );

  server.addService(deps.link.service, {
    Execute: (call: Duplex) => {
      const stream = track(call);
      const linkPeer = call.getPeer();
      // Outcomes settled in one turn of the event loop leave as one batch.
      let out: LinkFrame[] = [];
      const flush = () => {
        const batch = out;
        out = [];
        stream.write(encodeBatch(batch));
      };
      call.on('data', (batch: Buffer) => {
        let frames: DecodedFrame[];
        try {
          frames = decodeBatch(batch);
        } catch (err) {
          // Only a router writes batches: one that does not decode is a bug, not a caller's mistake.
          deps.logger.error({ err }, 'undecodable link batch');
          call.emit('error', { code: grpc.status.INTERNAL, details: 'undecodable link batch' });
          return;
        }
        for (const f of frames) {
          const headers = decodeHeaders(f.headers);
          const header = (key: string) => headers.find((h) => h[0] === key)?.[1];
          const untraced = contextOf(f.timeoutMs > 0 ? Date.now() + f.timeoutMs : undefined, header);
          // Not sampled at the router: no span here either (its events record the caller's traceparent).
          const own = header(UNSAMPLED) === undefined ? traced(untraced, header) : untraced;
          const ctx: TracedContext = { ...own, caller: linkCaller(header(CALLER_KEY), own, linkPeer) };
          run(stream, f.body, ctx, Infinity, (o) => {
            if (out.length === 0) setImmediate(flush);
            out.push({ id: f.id, body: encode(o), timeoutMs: 0, headers: NO_HEADERS });
          });
        }
      });
    },
  });

  return {
    drain() {
      draining = true;
      for (const stream of open) {
        stream.draining = true;
        stream.finishIfDone();
      }
    },
  };
}

/** A command of the stream's oneof, and the RPC that takes the same request (naming its span). */
interface StreamedSpec {
  readonly spec: CommandSpec;
  readonly rpc: string;
}

/** A call's context, with the trace context its commands' spans continue when traced. */
type TracedContext = CallContext & { readonly traceParent?: Context };

/** The RPC a command that names no known command is counted under. */
const STREAM_RPC = 'shardwrite.v1.CommandStreamService/Execute';

/**
 * A command's span at the shard (`SERVER`, named by the RPC that takes its
 * request, a child of the router's span for it or of the caller's stream).
 */
function serverSpan(tracer: Tracer, rpc: string, parent: Context): Span | undefined {
  const span = startRpcSpan(tracer, rpc, SpanKind.SERVER, parent);
  // An unsampled span is dropped: its command's events then record the caller's traceparent, as untraced.
  return span.isRecording() ? span : undefined;
}

/** gRPC codes that are a server's error (OpenTelemetry semantic conventions for RPC server spans). */
const SERVER_ERROR_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

function endServerSpan(span: Span, code: grpc.status): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (SERVER_ERROR_CODES.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
  span.end();
}

/**
 * Whom a link frame's command counts against: the caller the router named
 * (`CALLER_KEY`), else — a router that names none — the frame's principal or
 * the link's connection.
 */
function linkCaller(named: string | undefined, ctx: CallContext, linkPeer: string): string {
  if (named !== undefined) {
    try {
      return decodeURIComponent(named);
    } catch {
      // Not what a router writes: fall through.
    }
  }
  return callerKey(ctx.identity, linkPeer);
}

/** Runs one encoded StreamedCommand and answers it exactly once. */
function runFrame(
  deps: CommandStreamDeps,
  specs: StreamedCommands,
  decode: (b: Buffer) => StreamedCommand__Output,
  stream: OpenStream,
  frame: Buffer,
  streamCtx: TracedContext,
  maxInFlight: number,
  answer: (outcome: StreamedOutcome) => void,
): void {
  let span: Span | undefined;
  const fail = (requestId: string, err: unknown, method: string) => {
    const status = toRpcStatus(err);
    if (isUnexpected(err)) deps.logger.error({ err, method, ...traceFields(span) }, 'streamed command failed unexpectedly');
    deps.metrics.commands.inc({ method, code: grpc.status[status.code] });
    if (span) endServerSpan(span, status.code);
    answer({ requestId, error: toStatusMessage(status) });
  };
  let msg: StreamedCommand__Output;
  try {
    msg = decode(frame);
  } catch {
    fail(stringFieldOr(frame, 1, ''), undecodable(), 'Stream');
    return;
  }
  // The id as a wire scan reads it (the last field 1), exactly as a router in front reads it: a frame
  // whose other fields have unexpected wire types can make a lenient decoder misread the id.
  const requestId = stringFieldOr(frame, 1, msg.requestId);
  const carried = carriedCommand(specs, msg);
  if (deps.tracer && streamCtx.traceParent) span = serverSpan(deps.tracer, carried.streamed?.rpc ?? STREAM_RPC, streamCtx.traceParent);
  if (stream.draining || stream.finished) {
    fail(requestId, new ShardUnavailableError('the shard is shutting down; retry the command'), carried.streamed?.spec.method ?? 'Stream');
    return;
  }
  if (carried.streamed === undefined) {
    fail(requestId, carried.error, 'Stream');
    return;
  }
  const spec = carried.streamed.spec;
  if (stream.inFlight >= maxInFlight) {
    fail(requestId, new OverloadedError(deps.overloadRetryAfterMs, 'too many commands in flight on this stream'), spec.method);
    return;
  }
  stream.inFlight++;
  const own = msg.timeoutMs > 0 ? Date.now() + msg.timeoutMs : undefined;
  const deadline = own === undefined ? streamCtx.deadline : Math.min(own, streamCtx.deadline ?? Infinity);
  let result: Promise<unknown>;
  try {
    result = deps.pipeline.execute(spec, carried.request, span ? { ...streamCtx, deadline, span } : { ...streamCtx, deadline }).then((outcome) => {
      deps.metrics.commands.inc({ method: spec.method, code: 'OK' });
      if (span) endServerSpan(span, grpc.status.OK);
      answer({ requestId, result: toWireResult(outcome) });
    });
  } catch (err) {
    result = Promise.reject(asError(err));
  }
  result
    .catch((err: unknown) => fail(requestId, err, spec.method))
    .finally(() => {
      stream.inFlight--;
      stream.finishIfDone();
    });
}

/** The commands a StreamedCommand may carry: by oneof member, and packed (by request message). */
interface StreamedCommands {
  /** By oneof member (`placeOrder`, …). */
  readonly members: ReadonlyMap<string, StreamedSpec>;
  /** The oneof member that packs any command in a `google.protobuf.Any` (`packed`); undefined when the proto has none. */
  readonly packedMember: string | undefined;
  /** Every command of every module, by the full name of its request message, with its decoder. */
  readonly packed: ReadonlyMap<string, StreamedSpec & { readonly decode: (bytes: Buffer) => unknown }>;
}

/**
 * Maps each member of `StreamedCommand`'s `command` oneof (`placeOrder`, …)
 * to the CommandSpec of the RPC that takes the same request message, and
 * every module's commands by request message for the packed member, so a new
 * command needs nothing here: it is streamed packed, or by its own member.
 */
function streamedCommands(definition: PackageDefinition, modules: readonly DomainModule[]): StreamedCommands {
  const packed = new Map<string, StreamedSpec & { readonly decode: (bytes: Buffer) => unknown }>();
  for (const m of modules) {
    const methods = new Map(packedMethods(definition, m.service).map((p) => [p.rpc, p]));
    for (const spec of m.commands) {
      const rpc = `${m.service}/${spec.method}`;
      const method = methods.get(rpc);
      if (method) packed.set(method.requestType, { spec, rpc, decode: method.deserialize });
    }
  }
  const streamed = streamedMembers(definition);
  const members = new Map<string, StreamedSpec>();
  for (const [requestType, member] of streamed.byRequestType) {
    const spec = packed.get(requestType);
    if (spec) members.set(member, { spec: spec.spec, rpc: spec.rpc });
  }
  return { members, packedMember: streamed.packed, packed };
}

/** The command a decoded StreamedCommand carries, and its request; or why it carries none. */
type Carried = { readonly streamed: StreamedSpec; readonly request: unknown } | { readonly streamed?: undefined; readonly error: ValidationError };

function carriedCommand(commands: StreamedCommands, msg: StreamedCommand__Output): Carried {
  const member = msg.command;
  if (member !== undefined && member === commands.packedMember) {
    // protobufjs reads google.protobuf.Any with its proto field names, whatever the loader's keepCase.
    const any = msg[member] as { type_url?: string; value?: Buffer } | undefined;
    const found = commands.packed.get(typeNameOf(any?.type_url ?? ''));
    if (!found) return { error: new ValidationError([{ field: `${member}.type_url`, description: 'must name the request message of a command this service runs' }]) };
    try {
      return { streamed: found, request: found.decode(any?.value ?? Buffer.alloc(0)) };
    } catch {
      return { error: new ValidationError([{ field: `${member}.value`, description: `does not decode as ${found.spec.method}'s request` }]) };
    }
  }
  const streamed = member === undefined ? undefined : commands.members.get(member);
  if (!streamed || member === undefined) return { error: new ValidationError([{ field: 'command', description: 'must hold a command' }]) };
  return { streamed, request: msg[member] };
}

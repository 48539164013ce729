/**
 * The shard's gRPC surface: every command service of the registered domain
 * modules (served generically from their CommandSpecs) and EventStoreService.
 * Errors leave through `toServiceError`, the one status mapping.
 */
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { AnyDecider } from '../src/domain/decider.js';
import type { DomainModule } from '../src/domain/module.js';
import { AggregateNotFoundError, UnauthenticatedError, ValidationError } from '../src/errors.js';
import { deadlineOf } from '../src/grpc/server.js';
import { isUnexpected, toServiceError } from '../src/grpc/status.js';
import { toWireEvent, toWireResult } from '../src/grpc/wire.js';
import type { Logger } from '../src/observability/logger.js';
import { TRACEPARENT, trace, traceFields, validTraceparent } from '../src/observability/tracing.js';
import type { PipelineMetrics } from '../src/observability/metrics.js';
import type { AggregateLoader } from '../src/pipeline/loader.js';
import type { Ownership } from '../src/pipeline/ownership.js';
import type { CallContext, CommandPipeline } from '../src/pipeline/pipeline.js';
import type { EventReader } from '../src/store/types.js';
import type { ReadStreamRequest__Output } from '../src/generated/shardwrite/v1/ReadStreamRequest.js';
import { checkId } from '../src/domain/validation.js';
import { callerKey, identityFrom, mayAccessTenant, type Identity } from '../src/auth/identity.js';
import type { FieldViolation } from '../src/errors.js';
import type { PersonalData } from '../src/privacy/personal-data.js';

export interface ShardServiceDeps {
  readonly definition: PackageDefinition;
  /** Largest request message (the server's own limit is higher, for router link batches). */
  readonly maxMessageBytes: number;
  readonly modules: readonly DomainModule[];
  readonly deciders: ReadonlyMap<string, AnyDecider>;
  readonly pipeline: CommandPipeline;
  readonly reader: EventReader;
  readonly loader: AggregateLoader;
  readonly ownership: Ownership;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
  /** Tracing is on: a command's span is its call's (the grpc-js instrumentation's server span). */
  readonly traced: boolean;
  /** Opens the personal fields ReadStream returns (where the subject's key exists). */
  readonly personalData?: PersonalData;
}

/** Adds the command services and EventStoreService to `server`. */
export function addShardServices(server: grpc.Server, deps: ShardServiceDeps): void {
  for (const module of deps.modules) addCommandService(server, deps, module);
  addEventStoreService(server, deps);
}

/** What the pipeline needs to know about a call, from its metadata and deadline. */
export function callContext(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline' | 'getPeer' | 'metadata'>): CallContext {
  const ctx = contextOf(deadlineOf(call), (key) => {
    const v = call.metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  });
  return { ...ctx, caller: callerKey(ctx.identity, call.getPeer()) };
}

/**
 * A CallContext from a deadline and a way to read the caller's metadata (a
 * call's, or a link frame's headers). The identity is read from the identity
 * keys, which only a server's auth interceptor (after verifying the caller)
 * or the router (on a link frame) set: a caller's own values were dropped.
 */
export function contextOf(deadline: number | undefined, text: (key: string) => string | undefined): CallContext {
  const identity = identityFrom(text);
  const traceparent = validTraceparent(text(TRACEPARENT));
  return {
    deadline,
    ...(identity ? { identity } : {}),
    correlationId: text('x-correlation-id'),
    causationId: text('x-causation-id'),
    ...(traceparent ? { traceparent } : {}),
  };
}

/**
 * What grpc-js answers a message over its limit. The shard's server limit is
 * MAX_MESSAGE_BYTES plus the framing of a router's link batch, so its public
 * methods apply MAX_MESSAGE_BYTES to each message themselves.
 */
export function messageTooLarge(size: number, max: number): Partial<grpc.StatusObject> & { code: grpc.status } {
  return { code: grpc.status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${size} vs. ${max})` };
}

/** The ValidationError for a request whose bytes do not decode as its message. */
export function undecodable(): ValidationError {
  return new ValidationError([{ field: 'request', description: 'the message does not decode' }]);
}

/**
 * A method definition that hands the handler the raw bytes, and the decoder
 * the handler uses: a request that does not decode gets INVALID_ARGUMENT, as
 * the same command does when it comes over a stream or a router's link.
 */
export function rawRequests(method: grpc.MethodDefinition<unknown, unknown>): { definition: grpc.MethodDefinition<Buffer, unknown>; decode: (b: Buffer) => unknown } {
  return { definition: { ...method, requestDeserialize: (b: Buffer) => b }, decode: method.requestDeserialize };
}

function addCommandService(server: grpc.Server, deps: ShardServiceDeps, module: DomainModule): void {
  const service = deps.definition[module.service] as unknown as grpc.ServiceDefinition | undefined;
  if (!service) throw new Error(`service ${module.service} is not in the loaded proto definitions`);
  const definition: Record<string, grpc.MethodDefinition<Buffer, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [method, m] of Object.entries(service)) {
    const spec = module.commands.find((c) => c.method === method);
    if (!spec) throw new Error(`${module.service}/${method} has no CommandSpec`);
    const raw = rawRequests(m);
    definition[method] = raw.definition;
    handlers[method] = (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const span = deps.traced ? trace.getActiveSpan() : undefined;
      const failed = (err: unknown) => {
        const status = toServiceError(err);
        deps.metrics.commands.inc({ method, code: grpc.status[status.code] });
        if (isUnexpected(err)) deps.logger.error({ err, method, ...traceFields(span) }, 'command failed unexpectedly');
        callback(status);
      };
      if (call.request.length > deps.maxMessageBytes) {
        deps.metrics.commands.inc({ method, code: 'RESOURCE_EXHAUSTED' });
        callback(messageTooLarge(call.request.length, deps.maxMessageBytes));
        return;
      }
      let request: unknown;
      try {
        request = raw.decode(call.request);
      } catch {
        failed(undecodable());
        return;
      }
      const ctx = callContext(call);
      deps.pipeline.execute(spec, request, span ? { ...ctx, span } : ctx).then((outcome) => {
        deps.metrics.commands.inc({ method, code: 'OK' });
        callback(null, toWireResult(outcome));
      }, failed);
    };
  }
  server.addService(definition, handlers);
}

function addEventStoreService(server: grpc.Server, deps: ShardServiceDeps): void {
  const service = deps.definition['shardwrite.v1.EventStoreService'] as unknown as grpc.ServiceDefinition;
  const raw = rawRequests(service.ReadStream!);
  server.addService(
    { ReadStream: raw.definition },
    {
      ReadStream: (call: grpc.ServerWritableStream<Buffer, unknown>) => {
        const failed = (err: unknown) => {
          if (isUnexpected(err)) deps.logger.error({ err }, 'ReadStream failed unexpectedly');
          call.emit('error', toServiceError(err));
        };
        if (call.request.length > deps.maxMessageBytes) {
          call.emit('error', messageTooLarge(call.request.length, deps.maxMessageBytes));
          return;
        }
        let request: ReadStreamRequest__Output;
        try {
          request = raw.decode(call.request) as ReadStreamRequest__Output;
        } catch {
          failed(undecodable());
          return;
        }
        const identity = identityFrom((key) => {
          const v = call.metadata.get(key)[0];
          return typeof v === 'string' ? v : undefined;
        });
        // The interceptor verified the caller and its `read` scope; without an identity nothing is read.
        if (!identity) {
          failed(new UnauthenticatedError('no credentials'));
          return;
        }
        readStream(deps, request, call, identity).catch(failed);
      },
    },
  );
}

/** Events ReadStream reads from the store at a time. @default 1000 */
export const READ_STREAM_PAGE = 1000;

async function readStream(deps: ShardServiceDeps, req: ReadStreamRequest__Output, call: grpc.ServerWritableStream<Buffer, unknown>, identity: Identity): Promise<void> {
  const decider = deps.deciders.get(req.aggregateType);
  const violations: FieldViolation[] = [];
  checkId(violations, 'aggregate_id', req.aggregateId);
  if (!decider) violations.push({ field: 'aggregate_type', description: `must be one of ${[...deps.deciders.keys()].join(', ')}` });
  const from = Number(req.fromVersion);
  if (!Number.isSafeInteger(from) || from < 0) violations.push({ field: 'from_version', description: 'must be a non-negative integer' });
  if (violations.length > 0 || !decider) throw new ValidationError(violations);
  deps.ownership.assertOwner(req.aggregateId);
  const streamId = `${decider.aggregateType}-${req.aggregateId}`;
  // Another tenant's stream is answered as a command on it is: NOT_FOUND.
  const tenant = await deps.reader.streamTenant(streamId);
  if (tenant !== undefined && !mayAccessTenant(identity, tenant)) throw new AggregateNotFoundError(`${decider.aggregateType} ${req.aggregateId} does not exist`);
  // Page by page, each written before the next is read: a long stream reads with flat memory.
  for (let next = Math.max(from, 1); ; next += READ_STREAM_PAGE) {
    const page = await deps.reader.readStream(streamId, next, next + READ_STREAM_PAGE - 1);
    const events = deps.personalData ? await deps.personalData.reveal(decider, page) : page;
    for (const event of events) {
      if (call.cancelled) return;
      const ok = call.write(toWireEvent(deps.loader.upcastEvent(decider, event)));
      if (!ok) await new Promise((resolve) => call.once('drain', resolve));
    }
    if (page.length < READ_STREAM_PAGE) break;
  }
  call.end();
}

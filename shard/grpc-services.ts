/**
 * The shard's gRPC surface: every command service of the registered domain
 * modules (served generically from their CommandSpecs) and EventStoreService.
 * Errors leave through `toServiceError`, the one status mapping.
 */
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition, ServiceDefinition } from '@grpc/proto-loader';
import type { AnyDecider } from '../src/domain/decider.js';
import type { DomainModule } from '../src/domain/module.js';
import { ValidationError } from '../src/errors.js';
import { isUnexpected, toServiceError } from '../src/grpc/status.js';
import { toWireEvent, toWireResult } from '../src/grpc/wire.js';
import type { Logger } from '../src/observability/logger.js';
import type { PipelineMetrics } from '../src/observability/metrics.js';
import type { AggregateLoader } from '../src/pipeline/loader.js';
import type { Ownership } from '../src/pipeline/ownership.js';
import type { CallContext, CommandPipeline } from '../src/pipeline/pipeline.js';
import type { EventReader } from '../src/store/types.js';
import type { ReadStreamRequest__Output } from '../src/generated/shardwrite/v1/ReadStreamRequest.js';
import { checkId } from '../src/domain/validation.js';
import type { FieldViolation } from '../src/errors.js';

export interface ShardServiceDeps {
  readonly definition: PackageDefinition;
  readonly modules: readonly DomainModule[];
  readonly deciders: ReadonlyMap<string, AnyDecider>;
  readonly pipeline: CommandPipeline;
  readonly reader: EventReader;
  readonly loader: AggregateLoader;
  readonly ownership: Ownership;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
}

/** Adds the command services and EventStoreService to `server`. */
export function addShardServices(server: grpc.Server, deps: ShardServiceDeps): void {
  for (const module of deps.modules) addCommandService(server, deps, module);
  addEventStoreService(server, deps);
}

/** What the pipeline needs to know about a call, from its metadata and deadline. */
export function callContext(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline' | 'metadata'>): CallContext {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  const text = (key: string) => {
    const v = call.metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  };
  return {
    deadline: Number.isFinite(ms) ? ms : undefined,
    authorization: text('authorization'),
    correlationId: text('x-correlation-id'),
    causationId: text('x-causation-id'),
  };
}

function addCommandService(server: grpc.Server, deps: ShardServiceDeps, module: DomainModule): void {
  const service = deps.definition[module.service] as ServiceDefinition | undefined;
  if (!service) throw new Error(`service ${module.service} is not in the loaded proto definitions`);
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [method] of Object.entries(service)) {
    const spec = module.commands.find((c) => c.method === method);
    if (!spec) throw new Error(`${module.service}/${method} has no CommandSpec`);
    handlers[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      deps.pipeline.execute(spec, call.request, callContext(call)).then(
        (outcome) => {
          deps.metrics.commands.inc({ method, code: 'OK' });
          callback(null, toWireResult(outcome));
        },
        (err: unknown) => {
          const status = toServiceError(err);
          deps.metrics.commands.inc({ method, code: grpc.status[status.code] });
          if (isUnexpected(err)) deps.logger.error({ err, method }, 'command failed unexpectedly');
          callback(status);
        },
      );
    };
  }
  server.addService(service as unknown as grpc.ServiceDefinition, handlers);
}

function addEventStoreService(server: grpc.Server, deps: ShardServiceDeps): void {
  const service = deps.definition['shardwrite.v1.EventStoreService'] as unknown as grpc.ServiceDefinition;
  server.addService(service, {
    ReadStream: (call: grpc.ServerWritableStream<ReadStreamRequest__Output, unknown>) => {
      readStream(deps, call).catch((err: unknown) => {
        if (isUnexpected(err)) deps.logger.error({ err }, 'ReadStream failed unexpectedly');
        call.emit('error', toServiceError(err));
      });
    },
  });
}

async function readStream(deps: ShardServiceDeps, call: grpc.ServerWritableStream<ReadStreamRequest__Output, unknown>): Promise<void> {
  const req = call.request;
  const decider = deps.deciders.get(req.aggregateType);
  const violations: FieldViolation[] = [];
  checkId(violations, 'aggregate_id', req.aggregateId);
  if (!decider) violations.push({ field: 'aggregate_type', description: `must be one of ${[...deps.deciders.keys()].join(', ')}` });
  const from = Number(req.fromVersion);
  if (!Number.isSafeInteger(from) || from < 0) violations.push({ field: 'from_version', description: 'must be a non-negative integer' });
  if (violations.length > 0 || !decider) throw new ValidationError(violations);
  deps.ownership.assertOwner(req.aggregateId);
  const streamId = `${decider.aggregateType}-${req.aggregateId}`;
  const events = await deps.reader.readStream(streamId, Math.max(from, 1));
  for (const event of events) {
    if (call.cancelled) return;
    const ok = call.write(toWireEvent(deps.loader.upcastEvent(decider, event)));
    if (!ok) await new Promise((resolve) => call.once('drain', resolve));
  }
  call.end();
}

/**
 * CommandStreamService on the shard: pipelined commands over one
 * bidirectional stream. Each command runs through the same pipeline as a
 * unary call and gets exactly one outcome; commands of one aggregate keep
 * their order (they enter its mailbox in arrival order). Memory is bounded:
 * at most `maxInFlight` commands per stream are executing (beyond that a
 * command is answered OVERLOADED at once), and reading stops while the
 * caller is not reading its outcomes, so HTTP/2 flow control slows it down.
 */
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition, ServiceDefinition } from '@grpc/proto-loader';
import type { CommandSpec, DomainModule } from '../src/domain/module.js';
import { OverloadedError, ShardUnavailableError, ValidationError } from '../src/errors.js';
import { isUnexpected, toRpcStatus, toStatusMessage } from '../src/grpc/status.js';
import { toWireResult } from '../src/grpc/wire.js';
import type { Logger } from '../src/observability/logger.js';
import type { PipelineMetrics } from '../src/observability/metrics.js';
import type { CommandPipeline } from '../src/pipeline/pipeline.js';
import type { StreamedCommand__Output } from '../src/generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome } from '../src/generated/shardwrite/v1/StreamedOutcome.js';
import { callContext } from './grpc-services.js';
import { stringFieldOr } from '../src/grpc/wire-scan.js';

export interface CommandStreamDeps {
  readonly definition: PackageDefinition;
  readonly modules: readonly DomainModule[];
  readonly pipeline: CommandPipeline;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
  /** Commands executing at once per stream; default 1024. */
  readonly maxInFlight: number;
  /** Retry hint for OVERLOADED outcomes. */
  readonly overloadRetryAfterMs: number;
}

type Duplex = grpc.ServerDuplexStream<Buffer, StreamedOutcome>;

/** Lets the shard's shutdown stop the open streams gracefully. */
export interface CommandStreams {
  /**
   * From now on, commands arriving on open streams are answered UNAVAILABLE
   * (SHARD_UNAVAILABLE); each stream ends once its in-flight commands have
   * their outcomes, so the server's shutdown is not held by idle streams.
   */
  drain(): void;
}

interface StreamState {
  draining: boolean;
  finishIfDone(): void;
}

export function addCommandStreamService(server: grpc.Server, deps: CommandStreamDeps): CommandStreams {
  const original = deps.definition['shardwrite.v1.CommandStreamService'] as unknown as grpc.ServiceDefinition;
  const execute_ = original.Execute!;
  // Frames are decoded one by one in the handler, so a frame that does not
  // decode fails alone instead of ending the stream (and, behind a router,
  // every other caller's commands multiplexed on it).
  const service: grpc.ServiceDefinition = {
    Execute: { ...execute_, requestDeserialize: (b: Buffer) => b },
  };
  const decode = execute_.requestDeserialize as (b: Buffer) => StreamedCommand__Output;
  const specs = specsByOneofField(deps.definition, deps.modules);
  const open = new Set<StreamState>();
  let draining = false;
  server.addService(service, {
    Execute: (call: Duplex) => {
      const state: StreamState = { draining, finishIfDone: () => {} };
      open.add(state);
      call.once('close', () => open.delete(state));
      execute(call, deps, specs, state, decode);
    },
  });
  return {
    drain() {
      draining = true;
      for (const state of open) {
        state.draining = true;
        state.finishIfDone();
      }
    },
  };
}

/**
 * Maps each field of `StreamedCommand`'s `command` oneof (`placeOrder`, …)
 * to the CommandSpec of the RPC that takes the same request message, so a
 * new command needs only its proto field here.
 */
function specsByOneofField(definition: PackageDefinition, modules: readonly DomainModule[]): Map<string, CommandSpec> {
  const byRequestType = new Map<string, CommandSpec>();
  for (const m of modules) {
    const service = definition[m.service] as ServiceDefinition;
    for (const spec of m.commands) {
      const method = service[spec.method];
      const type = (method?.requestType as { type?: { name?: string } } | undefined)?.type?.name;
      if (type) byRequestType.set(type, spec);
    }
  }
  const streamed = definition['shardwrite.v1.StreamedCommand'] as { type: { field: { name: string; typeName: string; oneofIndex?: number }[] } };
  const out = new Map<string, CommandSpec>();
  for (const f of streamed.type.field) {
    const spec = byRequestType.get(f.typeName.split('.').pop() ?? '');
    if (spec) out.set(f.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), spec);
  }
  return out;
}

function execute(
  call: Duplex,
  deps: CommandStreamDeps,
  specs: Map<string, CommandSpec>,
  state: StreamState,
  decode: (b: Buffer) => StreamedCommand__Output,
): void {
  const streamCtx = callContext(call);
  let inFlight = 0;
  let ended = false;
  let waitingForDrain = false;

  const send = (outcome: StreamedOutcome) => {
    if (call.cancelled || call.destroyed) return;
    if (!call.write(outcome) && !waitingForDrain) {
      // The caller is not reading: stop reading its commands until it does.
      waitingForDrain = true;
      call.pause();
      call.once('drain', () => {
        waitingForDrain = false;
        call.resume();
      });
    }
  };
  const fail = (requestId: string, err: unknown, method: string) => {
    const status = toRpcStatus(err);
    if (isUnexpected(err)) deps.logger.error({ err, method }, 'streamed command failed unexpectedly');
    deps.metrics.commands.inc({ method, code: grpc.status[status.code] });
    send({ requestId, error: toStatusMessage(status) });
  };
  let finished = false;
  const finishIfDone = () => {
    if ((ended || state.draining) && inFlight === 0 && !call.destroyed && !finished) {
      finished = true;
      call.end();
    }
  };
  state.finishIfDone = finishIfDone;

  call.on('data', (frame: Buffer) => {
    let msg: StreamedCommand__Output;
    try {
      msg = decode(frame);
    } catch {
      fail(stringFieldOr(frame, 1, ''), new ValidationError([{ field: 'command', description: 'the message does not decode' }]), 'Stream');
      return;
    }
    // The id as a wire scan reads it (the last field 1), exactly as a router in front reads it: a frame
    // whose other fields have unexpected wire types can make a lenient decoder misread the id.
    const requestId = stringFieldOr(frame, 1, msg.requestId);
    const field = msg.command;
    const spec = field === undefined ? undefined : specs.get(field);
    if (state.draining || finished) {
      fail(requestId, new ShardUnavailableError('the shard is shutting down; retry the command'), spec?.method ?? 'Stream');
      return;
    }
    if (!spec || !field) {
      fail(requestId, new ValidationError([{ field: 'command', description: 'must hold one of the order commands' }]), 'Stream');
      return;
    }
    if (inFlight >= deps.maxInFlight) {
      fail(requestId, new OverloadedError(deps.overloadRetryAfterMs, 'too many commands in flight on this stream'), spec.method);
      return;
    }
    inFlight++;
    const own = msg.timeoutMs > 0 ? Date.now() + msg.timeoutMs : undefined;
    const deadline = own === undefined ? streamCtx.deadline : Math.min(own, streamCtx.deadline ?? Infinity);
    let result: Promise<unknown>;
    try {
      result = deps.pipeline.execute(spec, msg[field], { ...streamCtx, deadline }).then((outcome) => {
        deps.metrics.commands.inc({ method: spec.method, code: 'OK' });
        send({ requestId, result: toWireResult(outcome) });
      });
    } catch (err) {
      result = Promise.reject(err);
    }
    result
      .catch((err: unknown) => fail(requestId, err, spec.method))
      .finally(() => {
        inFlight--;
        finishIfDone();
      });
  });
  call.on('end', () => {
    ended = true;
    finishIfDone();
  });
  call.on('error', (err) => deps.logger.debug({ err }, 'command stream closed by the caller'));
}

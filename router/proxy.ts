/**
 * The router's forwarding: every routable method of every service in the
 * loaded proto definitions, served with byte-for-byte pass-through. A call's
 * request bytes are only scanned for the routing key (`src/grpc/routing-keys.ts`),
 * then sent unchanged to the owning shard over its long-lived channel, with
 * the caller's metadata and deadline; the shard's reply bytes, status and
 * trailers (including `grpc-status-details-bin`) come back unchanged.
 */
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition, MethodDefinition } from '@grpc/proto-loader';
import { callerKey, identityOfMetadata } from '../src/auth/identity.js';
import { ShardUnavailableError } from '../src/errors.js';
import { OUTCOME_RESULT, bytesField, outcomeError } from '../src/grpc/link-codec.js';
import { STATUS_DETAILS_KEY, decodeStatus, toServiceError, wrongShardEpoch } from '../src/grpc/status.js';
import { stringFieldOr, varintField } from '../src/grpc/wire-scan.js';
import type { Logger } from '../src/observability/logger.js';
import { context } from '../src/observability/tracing.js';
import type { RingShard, RingWatcher } from '../src/ring/index.js';
import type { Admission } from './admission.js';
import type { RouterMetrics } from './metrics.js';
import type { MethodRoute, RoutingTable } from '../src/grpc/routing-keys.js';
import { isTransportFailure, type ShardPool, type ShardTarget } from './shard-pool.js';
import { linkCaller, type LinkedCommands, type ShardLinks } from './shard-links.js';
import type { StreamMux } from './stream-mux.js';

export interface ProxyDeps {
  readonly definition: PackageDefinition;
  /** Serves bidirectional methods (CommandStreamService/Execute), one mux per method. */
  readonly streams: (route: MethodRoute) => StreamMux;
  /** The links to the shards, and the unary methods they carry (`linkedCommands`). */
  readonly links: ShardLinks;
  readonly linked: LinkedCommands;
  readonly routing: RoutingTable;
  readonly watcher: RingWatcher;
  readonly pool: ShardPool;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  /** The in-flight budgets: forwarded calls count against them like linked commands. */
  readonly admission: Admission;
  /** Tracing is on: a linked command's span is a child of its call's (the grpc-js instrumentation's server span). */
  readonly traced: boolean;
}

const identity = (b: Buffer): Buffer => b;

/** What a shard's attempt came to. `error` is what goes back to the caller when it is the final attempt. */
type Attempt = { readonly ok: true; readonly response: Buffer | undefined; readonly trailers: grpc.Metadata } | { readonly ok: false; readonly error: ReplyError; readonly wrongShardEpoch?: number };

/** A status to end a call with (what `toServiceError` builds, or a shard's status as received). */
type ReplyError = Partial<grpc.StatusObject> & { code: grpc.status };

/**
 * Adds a pass-through service for every service in `deps.definition` that has
 * routable methods, and returns their names. Unary and server-streaming
 * methods are forwarded; a method whose request marks no routing key, or that
 * streams requests, is left out (the router answers it UNIMPLEMENTED) and
 * logged.
 */
export function addProxyServices(server: grpc.Server, deps: ProxyDeps): string[] {
  const added: string[] = [];
  for (const [name, entry] of Object.entries(deps.definition)) {
    if (!isService(entry)) continue;
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [method, m] of Object.entries(entry)) {
      const route = deps.routing.routes.get(m.path);
      if (!route || (m.requestStream && !m.responseStream)) {
        deps.logger.warn({ method: m.path, reason: route ? 'client streaming is not proxied' : 'no routing key' }, 'method not served by the router');
        continue;
      }
      definition[method] = {
        path: m.path,
        requestStream: m.requestStream,
        responseStream: m.responseStream,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: m.originalName,
      };
      const wrap = route.responseType === deps.linked.resultType ? deps.linked.wrap(route.requestType) : undefined;
      handlers[method] = m.requestStream
        ? deps.streams(route).handler
        : m.responseStream
          ? serverStreamHandler(deps, route)
          : wrap !== undefined
            ? linkedUnaryHandler(deps, route, wrap)
            : unaryHandler(deps, route);
    }
    if (Object.keys(definition).length === 0) continue;
    server.addService(definition, handlers);
    added.push(name);
  }
  return added;
}

function isService(entry: unknown): entry is Record<string, MethodDefinition<object, object>> {
  if (typeof entry !== 'object' || entry === null || 'format' in entry) return false;
  const methods = Object.values(entry as Record<string, unknown>);
  return methods.length > 0 && methods.every((m) => typeof (m as { path?: unknown }).path === 'string');
}

function unaryHandler(deps: ProxyDeps, route: MethodRoute): grpc.handleUnaryCall<Buffer, Buffer> {
  const method = route.path.slice(1);
  return (call, callback) => {
    const started = performance.now();
    const finish = (shard: string, attempt: Attempt) => {
      record(deps, method, shard, attempt.ok ? grpc.status.OK : attempt.error.code, started);
      if (attempt.ok) callback(null, attempt.response, attempt.trailers);
      else callback(attempt.error);
    };
    const traced = tracedCall(deps);
    routeCall(deps, route, call, (target, metadata) => traced(() => unaryAttempt(target, route.path, call, metadata))).then(
      ({ shard, attempt }) => finish(shard, attempt),
      (err: unknown) => {
        deps.logger.error({ err, method }, 'forwarding failed unexpectedly');
        finish('none', { ok: false, error: toServiceError(err) });
      },
    );
  };
}

/**
 * A unary command: sent over the link to its shard as the streamed command it
 * is (the request bytes wrapped in their oneof member, or packed, with the caller's
 * deadline and metadata), and answered from the shard's outcome — its result
 * bytes as the reply, or its google.rpc.Status as the call's status and
 * `grpc-status-details-bin`, exactly as the shard answers a direct call.
 */
function linkedUnaryHandler(deps: ProxyDeps, route: MethodRoute, wrap: (request: Uint8Array) => Buffer): grpc.handleUnaryCall<Buffer, Buffer> {
  const method = route.path.slice(1);
  return (call, callback) => {
    const started = performance.now();
    let key: string;
    try {
      key = route.extract(call.request);
    } catch (err) {
      const error = toServiceError(err);
      record(deps, method, 'none', error.code, started);
      callback(error);
      return;
    }
    deps.links.send({
      key,
      body: wrap(call.request),
      ...linkCaller(call, deps.traced),
      rpc: method,
      ...(deps.traced ? { traceParent: context.active() } : {}),
      settle: (shard, outcome, err) => {
        const reply = outcome ? unaryReply(deps, outcome) : { ok: false as const, error: toServiceError(err) };
        record(deps, method, shard, reply.ok ? grpc.status.OK : reply.error.code, started);
        if (reply.ok) callback(null, reply.response);
        else callback(reply.error);
      },
    });
  };
}

/** A unary reply from a StreamedOutcome: its `result`, or its `error` (a google.rpc.Status) as the call's status. */
function unaryReply(deps: ProxyDeps, outcome: Buffer): { ok: true; response: Buffer } | { ok: false; error: ReplyError } {
  try {
    const status = outcomeError(outcome);
    if (status) {
      const metadata = new grpc.Metadata();
      metadata.set(STATUS_DETAILS_KEY, Buffer.from(status));
      return { ok: false, error: { code: varintField(status, 1), details: stringFieldOr(status, 2, ''), metadata } };
    }
    return { ok: true, response: bytesField(outcome, OUTCOME_RESULT) ?? Buffer.alloc(0) };
  } catch (err) {
    deps.logger.error({ err }, 'undecodable outcome from a shard');
    return { ok: false, error: toServiceError(err) };
  }
}

function serverStreamHandler(deps: ProxyDeps, route: MethodRoute): grpc.handleServerStreamingCall<Buffer, Buffer> {
  const method = route.path.slice(1);
  return (call) => {
    const started = performance.now();
    // Messages already passed on: after the first one, a failure can no longer be retried elsewhere.
    const progress = { forwarded: 0 };
    const finish = (shard: string, attempt: Attempt) => {
      record(deps, method, shard, attempt.ok ? grpc.status.OK : attempt.error.code, started);
      if (attempt.ok) call.end(attempt.trailers);
      else call.emit('error', attempt.error);
    };
    const traced = tracedCall(deps);
    routeCall(
      deps,
      route,
      call,
      (target, metadata) => traced(() => streamAttempt(target, route.path, call, metadata, progress)),
      () => progress.forwarded === 0,
    ).then(
      ({ shard, attempt }) => finish(shard, attempt),
      (err: unknown) => {
        deps.logger.error({ err, method }, 'forwarding failed unexpectedly');
        finish('none', { ok: false, error: toServiceError(err) });
      },
    );
  };
}

/**
 * Runs a forwarded call's attempt in the context its handler started in (the
 * grpc-js instrumentation's server span, when traced), so the call to the
 * shard is that span's child: the context is active only synchronously, and
 * the retry after a WRONG_SHARD answer starts after awaits.
 */
function tracedCall(deps: ProxyDeps): <T>(attempt: () => T) => T {
  if (!deps.traced) return (attempt) => attempt();
  const active = context.active();
  return (attempt) => context.with(active, attempt);
}

function record(deps: ProxyDeps, method: string, shard: string, code: grpc.status, started: number): void {
  deps.metrics.requests.inc({ method, shard, code: grpc.status[code] });
  deps.metrics.seconds.observe({ method, shard }, (performance.now() - started) / 1000);
}

/**
 * Finds the owner of the call's routing key and runs `send` against it; on a
 * WRONG_SHARD answer, refreshes the ring up to the epoch the shard reported
 * and tries once more with the owner at that epoch (safe: a shard refuses
 * WRONG_SHARD before appending anything).
 */
async function routeCall(
  deps: ProxyDeps,
  route: MethodRoute,
  call: grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerWritableStream<Buffer, Buffer>,
  send: (target: ShardTarget, metadata: grpc.Metadata) => Promise<Attempt>,
  mayRetry: () => boolean = () => true,
): Promise<{ shard: string; attempt: Attempt }> {
  let key: string;
  try {
    key = route.extract(call.request);
  } catch (err) {
    return { shard: 'none', attempt: { ok: false, error: toServiceError(err) } };
  }
  const view = deps.watcher.view;
  if (!view) return { shard: 'none', attempt: refuse(new ShardUnavailableError('the router has no ring yet')) };
  // The caller's metadata goes on as it is: the hop headers are already gone. grpc-js took
  // grpc-timeout (the deadline travels with the parent call), content-type, te and the
  // encodings out of it on arrival, sets its own user-agent on the way out, and HTTP/2
  // has no connection-specific headers to carry.
  const owner = view.ownerOf(key);
  const claim = { caller: callerKey(identityOfMetadata(call.metadata), call.getPeer()), bytes: call.request.length };
  // The first attempt may add headers to the metadata it is given: keep a pristine copy only when a retry may need it.
  const first = await attemptOn(deps, owner, claim, call.metadata, send);
  if (first.ok || first.wrongShardEpoch === undefined || !mayRetry()) return { shard: owner.id, attempt: first };

  const refreshed = (await deps.watcher.refresh(first.wrongShardEpoch)) ?? view;
  const next = refreshed.ownerOf(key);
  const second = await attemptOn(deps, next, claim, call.metadata.clone(), send);
  deps.metrics.wrongShardRetries.inc({ outcome: second.ok ? 'ok' : 'error' });
  return { shard: next.id, attempt: second };
}

async function attemptOn(
  deps: ProxyDeps,
  shard: RingShard,
  claim: { caller: string; bytes: number },
  metadata: grpc.Metadata,
  send: (target: ShardTarget, metadata: grpc.Metadata) => Promise<Attempt>,
): Promise<Attempt> {
  const target = deps.pool.get(shard.id);
  if (!target) return refuse(new ShardUnavailableError(`shard ${shard.id} has no channel`));
  const ticket = deps.admission.admit(claim.caller, shard.id, claim.bytes);
  if (ticket instanceof Error) return { ok: false, error: toServiceError(ticket) };
  try {
    return await target.fire(() => send(target, metadata));
  } catch (err) {
    const e = err as { code?: unknown };
    if (e.code === 'EOPENBREAKER') return refuse(new ShardUnavailableError(`shard ${shard.id} is unavailable (circuit open)`));
    const state = target.client.getChannel().getConnectivityState(false);
    if (isTransportFailure(err, state)) {
      // The shard may have moved: a cheap, rate-limited hint to re-read the ring.
      deps.watcher.nudge();
      return refuse(new ShardUnavailableError(`shard ${shard.id} is unavailable`));
    }
    return answered(err as grpc.ServiceError);
  } finally {
    ticket.release();
  }
}

function refuse(err: ShardUnavailableError): Attempt {
  return { ok: false, error: toServiceError(err) };
}

/** The shard's own error, passed on as it came; WRONG_SHARD is recognised for the retry. */
function answered(err: grpc.ServiceError): Attempt {
  const error: ReplyError = { code: err.code, details: err.details, metadata: err.metadata };
  if (err.code !== grpc.status.FAILED_PRECONDITION) return { ok: false, error };
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Buffer)) return { ok: false, error };
  try {
    const epoch = wrongShardEpoch(decodeStatus(raw));
    return epoch === undefined ? { ok: false, error } : { ok: false, error, wrongShardEpoch: epoch };
  } catch {
    return { ok: false, error };
  }
}

/**
 * One unary call to a shard. Resolves with the reply on OK; rejects with the
 * ServiceError otherwise, so the breaker sees it (and counts it only when it
 * is a transport failure).
 */
function unaryAttempt(target: ShardTarget, path: string, call: grpc.ServerUnaryCall<Buffer, Buffer>, metadata: grpc.Metadata): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    const upstream = target.client.makeUnaryRequest<Buffer, Buffer>(
      path,
      identity,
      identity,
      call.request,
      metadata,
      // The parent call carries the caller's deadline and cancellation to the shard.
      { parent: call },
      (err, value) => {
        if (err) reject(err);
        else response = value;
      },
    );
    // grpc-js runs the callback first, then reports the status: only here are the trailers known.
    upstream.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ ok: true, response, trailers: status.metadata });
    });
  });
}

/**
 * One server-streaming call to a shard: each message is written to the caller
 * as it arrives, with the caller's flow control. Resolves once the shard ended
 * the stream with OK and every message was passed on; rejects with the
 * shard's ServiceError otherwise.
 */
function streamAttempt(target: ShardTarget, path: string, call: grpc.ServerWritableStream<Buffer, Buffer>, metadata: grpc.Metadata, progress: { forwarded: number }): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const upstream = target.client.makeServerStreamRequest<Buffer, Buffer>(path, identity, identity, call.request, metadata, {
      parent: call,
    });
    let trailers: grpc.Metadata | undefined;
    let ended = false;
    const done = () => {
      if (ended && trailers) resolve({ ok: true, response: undefined, trailers });
    };
    upstream.on('data', (message: Buffer) => {
      progress.forwarded++;
      if (!call.write(message)) {
        upstream.pause();
        call.once('drain', () => upstream.resume());
      }
    });
    // 'status' can come before the buffered messages are read; finish only when both are in.
    upstream.on('end', () => {
      ended = true;
      done();
    });
    upstream.on('status', (status: grpc.StatusObject) => {
      if (status.code !== grpc.status.OK) return;
      trailers = status.metadata;
      done();
    });
    upstream.on('error', reject);
  });
}

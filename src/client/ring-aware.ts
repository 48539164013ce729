/**
 * Commands straight to their owner shards (`createClient(address, { ringAware: true })`):
 * the client learns the ring from the router (`ring-tracker.ts`), computes each
 * command's owner exactly as routers and shards do (proto/shardwrite/v1/RING.md)
 * and sends it over one CommandStreamService stream per shard, skipping the
 * router hop.
 *
 * - A shard that refuses a command it does not own (WRONG_SHARD) or a stream
 *   being moved (STREAM_MOVING) wrote nothing: the client gets a ring at least
 *   as new as the epoch the refusal names and sends the command again to its
 *   owner there, up to `maxAttempts` times, then through the router (which has
 *   its own retry, and whose answer is final).
 * - A shard the client is not connected to (not reachable, restarting, or a
 *   connection not up yet) is not waited for: its commands go through the
 *   router until the connection is back. So are commands before the first ring
 *   arrives, and every command when the ring cannot be read (no `read` scope,
 *   a router too old to serve it) or is hashed in a way this client does not know.
 * - A shard that is shutting down answers SHARD_UNAVAILABLE without running the
 *   command: it goes through the router, and the shard is not used again until
 *   its connection is renewed.
 * - A stream that breaks with commands in flight rejects them with
 *   `ConnectionLostError`, exactly as the router's stream does: their outcome is
 *   unknown; resend with the same command id.
 *
 * Every shard authenticates and authorizes each command as the router does, so
 * the client presents the same metadata and TLS credentials to the shards.
 */
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from '../grpc/proto.js';
import { fromStatusMessage, isShardUnavailable, streamMovingEpoch, wrongShardEpoch, type RpcStatus } from '../grpc/status.js';
import { buildRoutingTable, loadProtoRoot, type MethodRoute } from '../grpc/routing-keys.js';
import type { CommandResult__Output } from '../generated/shardwrite/v1/CommandResult.js';
import type { StreamedCommand } from '../generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome__Output } from '../generated/shardwrite/v1/StreamedOutcome.js';
import type { RingShard } from '../ring/document.js';
import type { RingView } from '../ring/view.js';
import { CommandFailedError, ConnectionLostError, tooManyPending } from './errors.js';
import { reconnectDelay } from './reconnect.js';
import { RingTracker } from './ring-tracker.js';

export interface RingAwareOptions {
  /**
   * Tries of one command at owner shards (each WRONG_SHARD or STREAM_MOVING
   * refusal costs one) before it goes through the router; default
   * {@link RING_AWARE_MAX_ATTEMPTS}.
   */
  readonly maxAttempts?: number;
  /**
   * How long to wait for a newer ring after a refusal before sending again
   * anyway; default {@link RING_REFRESH_TIMEOUT_MS}.
   */
  readonly refreshTimeoutMs?: number;
  /**
   * Where to dial a shard; default its ring address. For clients that reach
   * the shards by other names than the routers do (a port forward, NAT).
   */
  readonly shardAddress?: (shard: RingShard) => string;
  /** Longest wait between attempts to reconnect to a shard that went away, in ms; default {@link SHARD_RECONNECT_MAX_MS}. */
  readonly reconnectMaxMs?: number;
}

/** @default 3 */
export const RING_AWARE_MAX_ATTEMPTS = 3;
/** @default 2000 */
export const RING_REFRESH_TIMEOUT_MS = 2000;
/** @default 2000 — a restarted shard is used directly again within about two seconds. */
export const SHARD_RECONNECT_MAX_MS = 2000;

/** What a ring-aware client did, for monitoring and tests. */
export interface RoutingStats {
  /** The ring epoch the client routes by (0 = none: everything goes through the router). */
  readonly epoch: number;
  /** Commands sent straight to a shard (each resend counts again). */
  readonly direct: number;
  /** Commands sent through the router. */
  readonly viaRouter: number;
  /** WRONG_SHARD refusals from shards, each followed by a ring refresh and a resend. */
  readonly wrongShard: number;
  /** STREAM_MOVING refusals from shards, likewise. */
  readonly moving: number;
}

/** Sends one command of the `command` oneof and resolves with its result. */
export type SendCommand = (field: keyof StreamedCommand, request: object, options: { timeoutMs?: number }) => Promise<CommandResult__Output>;

export interface RingAwareDeps {
  readonly api: ProtoGrpcType;
  /** The router's address: where the ring is read, and the fallback. */
  readonly address: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly metadata: () => grpc.Metadata;
  readonly maxPending: number;
  /** Sends through the router (the plain client's path). */
  readonly viaRouter: SendCommand;
  readonly options: RingAwareOptions;
}

export interface RingAwareSender {
  readonly send: SendCommand;
  readonly pending: number;
  readonly stats: RoutingStats;
  close(): void;
}

const EXECUTE_PATH = '/shardwrite.v1.CommandStreamService/Execute';

/** What to do after a shard's answer that is not a result. */
type Refusal =
  | { readonly kind: 'final' }
  | { readonly kind: 'wrong-shard'; readonly epoch: number }
  | { readonly kind: 'moving'; readonly epoch: number; readonly retryAfterMs: number }
  | { readonly kind: 'shutting-down' };

function refusalOf(status: RpcStatus): Refusal {
  const wrongShard = wrongShardEpoch(status);
  if (wrongShard !== undefined) return { kind: 'wrong-shard', epoch: wrongShard };
  const moving = streamMovingEpoch(status);
  if (moving !== undefined) return { kind: 'moving', epoch: moving, retryAfterMs: status.retryAfterMs ?? 0 };
  // From a shard (not a router), this answer means only "shutting down, not run".
  if (isShardUnavailable(status)) return { kind: 'shutting-down' };
  return { kind: 'final' };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Waiter {
  resolve: (outcome: StreamedOutcome__Output) => void;
  reject: (err: Error) => void;
}

/** One shard: its channel and the one stream its commands share. */
class ShardStream {
  readonly #client: grpc.Client;
  readonly #deserialize: (bytes: Buffer) => StreamedOutcome__Output;
  readonly #metadata: () => grpc.Metadata;
  readonly #waiting = new Map<string, Waiter>();
  #call: grpc.ClientDuplexStream<Buffer, StreamedOutcome__Output> | undefined;
  #shuttingDown = false;
  #closed = false;

  constructor(
    readonly dialled: string,
    credentials: grpc.ChannelCredentials,
    channelOptions: grpc.ChannelOptions,
    deserialize: (bytes: Buffer) => StreamedOutcome__Output,
    metadata: () => grpc.Metadata,
  ) {
    this.#client = new grpc.Client(dialled, credentials, channelOptions);
    this.#deserialize = deserialize;
    this.#metadata = metadata;
    // Connect now, so the first commands find the connection up.
    this.#client.getChannel().getConnectivityState(true);
  }

  /** Whether commands go straight to this shard now: connected, and not shutting down. Asks an idle channel to connect. */
  ready(): boolean {
    return !this.#shuttingDown && !this.#closed && this.#client.getChannel().getConnectivityState(true) === grpc.connectivityState.READY;
  }

  /** Sends one encoded StreamedCommand; resolves with its outcome, rejects with ConnectionLostError when the stream breaks first. */
  execute(requestId: string, bytes: Buffer): Promise<StreamedOutcome__Output> {
    const call = (this.#call ??= this.#open());
    return new Promise((resolve, reject) => {
      this.#waiting.set(requestId, { resolve, reject });
      call.write(bytes);
    });
  }

  /** The shard said it is shutting down: not used again until its connection drops (or 10 s pass). */
  shuttingDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    const channel = this.#client.getChannel();
    channel.watchConnectivityState(grpc.connectivityState.READY, Date.now() + 10_000, () => (this.#shuttingDown = false));
  }

  /** Ends the stream once its commands are answered, then closes the channel. */
  close(): void {
    this.#closed = true;
    const call = this.#call;
    if (!call) return this.#client.close();
    call.end();
    if (this.#waiting.size === 0) this.#client.close();
    else call.once('status', () => this.#client.close());
  }

  #open(): grpc.ClientDuplexStream<Buffer, StreamedOutcome__Output> {
    const call = this.#client.makeBidiStreamRequest<Buffer, StreamedOutcome__Output>(EXECUTE_PATH, (b) => b, this.#deserialize, this.#metadata());
    call.on('data', (o: StreamedOutcome__Output) => {
      const w = this.#waiting.get(o.requestId);
      if (!w) return;
      this.#waiting.delete(o.requestId);
      w.resolve(o);
    });
    const lost = (status: RpcStatus) => {
      if (this.#call === call) this.#call = undefined;
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const w of waiting) w.reject(new ConnectionLostError(status));
    };
    call.on('error', (err: grpc.ServiceError) => lost({ code: err.code, message: err.details }));
    call.on('end', () => lost({ code: grpc.status.UNAVAILABLE, message: 'the shard ended the stream' }));
    return call;
  }
}

export function startRingAware(deps: RingAwareDeps): RingAwareSender {
  const { api, options } = deps;
  const maxAttempts = options.maxAttempts ?? RING_AWARE_MAX_ATTEMPTS;
  const refreshTimeoutMs = options.refreshTimeoutMs ?? RING_REFRESH_TIMEOUT_MS;
  const dial = options.shardAddress ?? ((s: RingShard) => s.address);
  const channelOptions: grpc.ChannelOptions = {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': options.reconnectMaxMs ?? SHARD_RECONNECT_MAX_MS,
  };
  const execute = api.shardwrite.v1.CommandStreamService.service.Execute;
  const encode = execute.requestSerialize as (command: StreamedCommand) => Buffer;
  const decode = execute.responseDeserialize as (bytes: Buffer) => StreamedOutcome__Output;
  const route: MethodRoute | undefined = buildRoutingTable(loadProtoRoot()).routes.get(EXECUTE_PATH);
  if (!route) throw new Error(`${EXECUTE_PATH} has no routing key`);

  const shards = new Map<string, ShardStream>();
  const sync = (view: RingView | undefined) => {
    const wanted = new Map((view?.shards ?? []).map((s) => [s.id, dial(s)]));
    for (const [id, stream] of shards) {
      if (wanted.get(id) === stream.dialled) continue;
      shards.delete(id);
      stream.close();
    }
    for (const [id, address] of wanted) {
      if (!shards.has(id)) shards.set(id, new ShardStream(address, deps.credentials, channelOptions, decode, deps.metadata));
    }
  };
  const ring = new RingTracker(new api.shardwrite.v1.RingService(deps.address, deps.credentials), deps.metadata, sync);
  ring.start();

  const stats = { direct: 0, viaRouter: 0, wrongShard: 0, moving: 0 };
  let pending = 0;
  let nextId = 0;
  let closed = false;

  /** The owner's stream when the command can go straight to it now. */
  const ownerOf = (bytes: Buffer): ShardStream | undefined => {
    const view = ring.view;
    if (view === undefined) return undefined;
    let key: string;
    try {
      key = route.extract(bytes);
    } catch {
      return undefined;
    }
    if (key === '') return undefined;
    const stream = shards.get(view.ownerOf(key).id);
    return stream?.ready() ? stream : undefined;
  };

  const viaRouter = (field: keyof StreamedCommand, request: object, timeoutMs: number | undefined) => {
    stats.viaRouter++;
    return deps.viaRouter(field, request, timeoutMs === undefined ? {} : { timeoutMs });
  };

  const run = async (field: keyof StreamedCommand, request: object, timeoutMs: number | undefined): Promise<CommandResult__Output> => {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const left = deadline === undefined ? 0 : deadline - Date.now();
      if (deadline !== undefined && left <= 0) throw new CommandFailedError({ code: grpc.status.DEADLINE_EXCEEDED, message: 'deadline exceeded' });
      const requestId = String(++nextId);
      const bytes = encode({ requestId, [field]: request, timeoutMs: left });
      const shard = ownerOf(bytes);
      if (!shard) break;
      stats.direct++;
      const outcome = await shard.execute(requestId, bytes);
      if (outcome.result) return outcome.result;
      const status = outcome.error ? fromStatusMessage(outcome.error) : { code: grpc.status.UNKNOWN, message: 'empty outcome' };
      const refusal = refusalOf(status);
      switch (refusal.kind) {
        case 'final':
          throw new CommandFailedError(status);
        case 'shutting-down':
          shard.shuttingDown();
          break;
        case 'wrong-shard':
          stats.wrongShard++;
          // A shard behind the client's ring catches up by itself (it re-reads on every refusal): give it a moment.
          if (ring.epoch >= refusal.epoch) await sleep(reconnectDelay(attempt, { baseMs: 50, capMs: 500 }));
          else await ring.atLeast(refusal.epoch, refreshTimeoutMs);
          break;
        case 'moving':
          stats.moving++;
          await ring.atLeast(refusal.epoch, refreshTimeoutMs);
          if (ring.epoch < refusal.epoch) await sleep(refusal.retryAfterMs);
          break;
      }
    }
    return viaRouter(field, request, deadline === undefined ? undefined : Math.max(1, deadline - Date.now()));
  };

  return {
    send(field, request, opts) {
      if (closed) return Promise.reject(new Error('the client is closed'));
      if (pending >= deps.maxPending) {
        return Promise.reject(tooManyPending(deps.maxPending));
      }
      pending++;
      return run(field, request, opts.timeoutMs).finally(() => pending--);
    },
    get pending() {
      return pending;
    },
    get stats() {
      return { epoch: ring.view?.epoch ?? 0, ...stats };
    },
    close() {
      closed = true;
      ring.close();
      for (const stream of shards.values()) stream.close();
      shards.clear();
    },
  };
}

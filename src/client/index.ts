/**
 * A small typed client for TypeScript callers: every command of every
 * registered command service as a promise, all sent over one shared
 * CommandStreamService stream (pipelined: many commands in flight, no
 * per-call overhead). The order and process-manager commands have methods of
 * their own; any command service, including one added later, is reached
 * through `service`, typed by its generated definition.
 *
 * ```ts
 * const client = createClient('127.0.0.1:50051');
 * const result = await client.placeOrder({ orderId: 'o1', commandId: 'c1', ... });
 * const inventory = client.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService');
 * await inventory.ReceiveStock({ sku: 'sku-1', commandId: 'c2', quantity: 10 });
 * client.close();
 * ```
 *
 * When the stream breaks, every command still waiting is rejected with
 * `ConnectionLostError` (it may or may not have been applied: retry it with
 * the same `commandId` and the retry reports `duplicate` if it was), and the
 * next command opens a new stream over the (reconnecting) channel.
 *
 * Events out: `subscribe(address, …)` follows what the cluster commits (an
 * async iterator that resumes by itself after a broken connection, see
 * `subscribe.ts`), and `consume(address, …)` runs a handler as one member of
 * a durable consumer group (see `consume.ts`).
 */
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { loadApi, loadPackageDefinition } from '../grpc/proto.js';
import { packedMethods, streamedMembers, typeUrlOf } from '../grpc/packed.js';
import { credentialsOf, type TlsOptions } from './credentials.js';
import { fromStatusMessage, statusOf, type RpcStatus } from '../grpc/status.js';
import { CommandFailedError, ConnectionLostError, tooManyPending } from './errors.js';
import { startRingAware, type RingAwareOptions, type RoutingStats } from './ring-aware.js';
import type { CommandStreamServiceClient } from '../generated/shardwrite/v1/CommandStreamService.js';
import type { StreamedCommand } from '../generated/shardwrite/v1/StreamedCommand.js';
import type { StreamedOutcome__Output } from '../generated/shardwrite/v1/StreamedOutcome.js';
import type { CommandResult__Output } from '../generated/shardwrite/v1/CommandResult.js';
import type { PlaceOrderRequest } from '../generated/shardwrite/v1/PlaceOrderRequest.js';
import type { UpdateShippingAddressRequest } from '../generated/shardwrite/v1/UpdateShippingAddressRequest.js';
import type { ShipOrderRequest } from '../generated/shardwrite/v1/ShipOrderRequest.js';
import type { CancelOrderRequest } from '../generated/shardwrite/v1/CancelOrderRequest.js';
import type { AddOrderLineRequest } from '../generated/shardwrite/v1/AddOrderLineRequest.js';
import type { RemoveOrderLineRequest } from '../generated/shardwrite/v1/RemoveOrderLineRequest.js';
import type { AddOrderLinesRequest } from '../generated/shardwrite/v1/AddOrderLinesRequest.js';
import type { AuthorizePaymentRequest } from '../generated/shardwrite/v1/AuthorizePaymentRequest.js';
import type { CapturePaymentRequest } from '../generated/shardwrite/v1/CapturePaymentRequest.js';
import type { MarkPaymentCapturedRequest } from '../generated/shardwrite/v1/MarkPaymentCapturedRequest.js';
import type { RefundPaymentRequest } from '../generated/shardwrite/v1/RefundPaymentRequest.js';
import type { RecordProcessInputRequest } from '../generated/shardwrite/v1/RecordProcessInputRequest.js';
import type { CompleteProcessStepRequest } from '../generated/shardwrite/v1/CompleteProcessStepRequest.js';
import type { RetryProcessRequest } from '../generated/shardwrite/v1/RetryProcessRequest.js';

export { subscribe, SUBSCRIBE_BUFFER, type Subscription, type SubscribeOptions, type SubscriptionProgress } from './subscribe.js';
export { consume, CONSUME_MAX_BATCH, type Consumer, type ConsumeOptions, type DeliveryContext } from './consume.js';
export { SubscriptionRefusedError, ReconnectExhaustedError, type ReconnectOptions } from './reconnect.js';
export type { ReceivedEvent } from './events.js';
export type { TlsOptions } from './credentials.js';
export { RING_AWARE_MAX_ATTEMPTS, RING_REFRESH_TIMEOUT_MS, SHARD_RECONNECT_MAX_MS, type RingAwareOptions, type RoutingStats } from './ring-aware.js';

export type CommandResult = CommandResult__Output;
export type { RpcStatus };
export { CommandFailedError, ConnectionLostError } from './errors.js';

export interface CommandOptions {
  /** Per-command deadline in milliseconds. */
  timeoutMs?: number;
}

export interface ClientOptions {
  /**
   * Send each command straight to the shard that owns its aggregate, over one
   * stream per shard, instead of through the router at `address` (which is
   * still where the ring is read, and where commands go when a shard cannot
   * be reached): see `ring-aware.ts`. Needs the `read` scope (to read the
   * ring) and network access to the shards' addresses. Default off.
   */
  ringAware?: boolean | RingAwareOptions;
  /** Metadata sent when each stream opens (e.g. `authorization`). */
  metadata?: Record<string, string>;
  /** Commands waiting for an outcome before new ones are refused locally; default 10,000. */
  maxPending?: number;
  /** Explicit channel credentials (win over `tls`). */
  credentials?: grpc.ChannelCredentials;
  /** TLS: the CA file to trust, and a client certificate for mutual TLS; unset (and no `credentials`) = plaintext. */
  tls?: TlsOptions;
}

/**
 * The command RPCs of a generated service definition (e.g.
 * `InventoryServiceDefinition` from `src/generated/shardwrite/v1/`): one
 * method per RPC that answers a CommandResult, named as in the proto
 * (`ReserveStock`), taking its typed request.
 */
export type CommandsOf<D> = {
  readonly [M in keyof D as string extends M ? never : D[M] extends MethodDefinition<object, object, object, CommandResult__Output> ? M : never]: D[M] extends MethodDefinition<
    infer Request,
    object,
    object,
    CommandResult__Output
  >
    ? (request: Request, options?: CommandOptions) => Promise<CommandResult>
    : never;
};

/** One command RPC of a client: its request in, its result out. */
type CommandCall = (request: object, opts?: CommandOptions) => Promise<CommandResult>;

export interface ShardwriteClient {
  /**
   * The commands of the command service `name` (`shardwrite.v1.InventoryService`),
   * typed by its generated definition `D`. Each is sent like the named
   * methods (on the shared stream, or straight to its owner when ring-aware),
   * in its own StreamedCommand member when it has one, else packed.
   *
   * @throws Error when `name` is not a service of the loaded proto files.
   */
  service<D extends object>(name: string): CommandsOf<D>;
  placeOrder(request: PlaceOrderRequest, options?: CommandOptions): Promise<CommandResult>;
  updateShippingAddress(request: UpdateShippingAddressRequest, options?: CommandOptions): Promise<CommandResult>;
  shipOrder(request: ShipOrderRequest, options?: CommandOptions): Promise<CommandResult>;
  cancelOrder(request: CancelOrderRequest, options?: CommandOptions): Promise<CommandResult>;
  addOrderLine(request: AddOrderLineRequest, options?: CommandOptions): Promise<CommandResult>;
  removeOrderLine(request: RemoveOrderLineRequest, options?: CommandOptions): Promise<CommandResult>;
  /** Several lines at once: one event per line, all appended or none. */
  addOrderLines(request: AddOrderLinesRequest, options?: CommandOptions): Promise<CommandResult>;
  authorizePayment(request: AuthorizePaymentRequest, options?: CommandOptions): Promise<CommandResult>;
  capturePayment(request: CapturePaymentRequest, options?: CommandOptions): Promise<CommandResult>;
  markPaymentCaptured(request: MarkPaymentCapturedRequest, options?: CommandOptions): Promise<CommandResult>;
  refundPayment(request: RefundPaymentRequest, options?: CommandOptions): Promise<CommandResult>;
  /** Process-manager instances (see proto/shardwrite/v1/process_managers.proto); used by the pm worker and CLI. */
  recordProcessInput(request: RecordProcessInputRequest, options?: CommandOptions): Promise<CommandResult>;
  completeProcessStep(request: CompleteProcessStepRequest, options?: CommandOptions): Promise<CommandResult>;
  retryProcess(request: RetryProcessRequest, options?: CommandOptions): Promise<CommandResult>;
  /** Commands sent and not yet answered. */
  readonly pending: number;
  /** Where commands went, with `ringAware`; `undefined` without it. */
  readonly routing: RoutingStats | undefined;
  /** Ends the stream (after pending outcomes arrive) and closes the channel. */
  close(): void;
}

interface Waiter {
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
}

/** One open stream and the commands sent on it that still wait for an outcome. */
interface OpenStream {
  readonly call: grpc.ClientDuplexStream<StreamedCommand, StreamedOutcome__Output>;
  readonly owned: Map<string, Waiter>;
}

export function createClient(address: string, options: ClientOptions = {}): ShardwriteClient {
  const definition = loadPackageDefinition();
  const api = loadApi(definition);
  const members = streamedMembers(definition);
  const credentials = credentialsOf(options);
  const stub: CommandStreamServiceClient = new api.shardwrite.v1.CommandStreamService(address, credentials);
  const maxPending = options.maxPending ?? 10_000;
  const waiting = new Map<string, Waiter>();
  let stream: OpenStream | undefined;
  let nextId = 0;
  let closed = false;

  const metadata = () => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
    return md;
  };
  const open = (): OpenStream => {
    const call = stub.execute(metadata());
    const owned = new Map<string, Waiter>();
    const s: OpenStream = { call, owned };
    call.on('data', (o: StreamedOutcome__Output) => {
      const w = waiting.get(o.requestId);
      if (!w) return;
      waiting.delete(o.requestId);
      owned.delete(o.requestId);
      if (o.result) w.resolve(o.result);
      else w.reject(new CommandFailedError(o.error ? fromStatusMessage(o.error) : { code: grpc.status.UNKNOWN, message: 'empty outcome' }));
    });
    const lost = (status: RpcStatus) => {
      if (stream === s) stream = undefined;
      for (const [id, w] of owned) {
        waiting.delete(id);
        w.reject(new ConnectionLostError(status));
      }
      owned.clear();
    };
    call.on('error', (err: grpc.ServiceError) => lost(statusOf(err)));
    call.on('end', () => lost({ code: grpc.status.UNAVAILABLE, message: 'the service ended the stream' }));
    return s;
  };

  const viaRouter = (field: keyof StreamedCommand, request: object, opts: CommandOptions = {}): Promise<CommandResult> => {
    if (closed) return Promise.reject(new Error('the client is closed'));
    if (waiting.size >= maxPending) {
      return Promise.reject(tooManyPending(maxPending));
    }
    const s = (stream ??= open());
    const requestId = String(++nextId);
    return new Promise<CommandResult>((resolve, reject) => {
      const w = { resolve, reject };
      waiting.set(requestId, w);
      s.owned.set(requestId, w);
      s.call.write({ requestId, [field]: request, timeoutMs: opts.timeoutMs ?? 0 });
    });
  };

  const ringAware = options.ringAware ? startRingAware({ api, address, credentials, metadata, maxPending, viaRouter, options: options.ringAware === true ? {} : options.ringAware }) : undefined;
  const send = ringAware ? (field: keyof StreamedCommand, request: object, opts: CommandOptions = {}) => ringAware.send(field, request, opts) : viaRouter;
  const sendAs =
    (field: keyof StreamedCommand): CommandCall =>
    (request, opts) =>
      send(field, request, opts);

  // One method table per service, built on first use (it reads the loaded definitions).
  const services = new Map<string, Record<string, CommandCall>>();
  const service = <D extends object>(name: string): CommandsOf<D> => {
    const known = services.get(name);
    if (known) return known as CommandsOf<D>;
    const methods: Record<string, CommandCall> = {};
    for (const m of packedMethods(definition, name)) {
      const method = m.rpc.slice(m.rpc.lastIndexOf('/') + 1);
      const member = members.byRequestType.get(m.requestType);
      const packedMember = members.packed;
      if (member !== undefined) methods[method] = sendAs(member as keyof StreamedCommand);
      else if (packedMember !== undefined) {
        const typeUrl = typeUrlOf(m.requestType);
        methods[method] = (request, opts) => {
          let value: Buffer;
          try {
            value = m.serialize(request);
          } catch (err) {
            return Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
          // google.protobuf.Any keeps its proto field names (protobufjs's wrapper), whatever the loader's keepCase.
          return send(packedMember as keyof StreamedCommand, { type_url: typeUrl, value }, opts);
        };
      }
    }
    services.set(name, methods);
    return methods as CommandsOf<D>;
  };

  return {
    service,
    placeOrder: sendAs('placeOrder'),
    updateShippingAddress: sendAs('updateShippingAddress'),
    shipOrder: sendAs('shipOrder'),
    cancelOrder: sendAs('cancelOrder'),
    addOrderLine: sendAs('addOrderLine'),
    removeOrderLine: sendAs('removeOrderLine'),
    addOrderLines: sendAs('addOrderLines'),
    authorizePayment: sendAs('authorizePayment'),
    capturePayment: sendAs('capturePayment'),
    markPaymentCaptured: sendAs('markPaymentCaptured'),
    refundPayment: sendAs('refundPayment'),
    recordProcessInput: sendAs('recordProcessInput'),
    completeProcessStep: sendAs('completeProcessStep'),
    retryProcess: sendAs('retryProcess'),
    get pending() {
      return ringAware?.pending ?? waiting.size;
    },
    get routing() {
      return ringAware?.stats;
    },
    close() {
      closed = true;
      ringAware?.close();
      const s = stream;
      if (!s) {
        stub.close();
        return;
      }
      s.call.end();
      const done = () => stub.close();
      if (waiting.size === 0) done();
      else {
        s.call.once('end', done);
        s.call.once('error', done);
      }
    },
  };
}

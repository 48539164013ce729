/** Typed gRPC clients for tests, with promise-returning calls and rich statuses. */
import * as grpc from '@grpc/grpc-js';
import { loadApi } from '../../src/grpc/proto.js';
import { statusOf, type RpcStatus } from '../../src/grpc/status.js';
import type { OrderServiceClient } from '../../src/generated/shardwrite/v1/OrderService.js';
import type { EventStoreServiceClient } from '../../src/generated/shardwrite/v1/EventStoreService.js';
import type { CommandResult__Output } from '../../src/generated/shardwrite/v1/CommandResult.js';
import type { Event__Output } from '../../src/generated/shardwrite/v1/Event.js';

const api = loadApi();

export type OrderMethod =
  'PlaceOrder' | 'UpdateShippingAddress' | 'ShipOrder' | 'CancelOrder' | 'AddOrderLine' | 'RemoveOrderLine' | 'AuthorizePayment' | 'CapturePayment' | 'MarkPaymentCaptured' | 'RefundPayment';

export interface Clients {
  orders: OrderServiceClient;
  events: EventStoreServiceClient;
  /** Calls an OrderService method; resolves with the result or rejects with a `CallError`. */
  call(method: OrderMethod, request: object, options?: { deadlineMs?: number; metadata?: Record<string, string> }): Promise<CommandResult__Output>;
  /** Calls and returns either the result or the rich status of the failure. */
  attempt(method: OrderMethod, request: object, options?: { deadlineMs?: number; metadata?: Record<string, string> }): Promise<{ ok: CommandResult__Output } | { error: RpcStatus }>;
  readStream(aggregateType: string, aggregateId: string, fromVersion?: number): Promise<Event__Output[]>;
  close(): void;
}

export class CallError extends Error {
  constructor(readonly status: RpcStatus) {
    super(`${grpc.status[status.code]}: ${status.message}`);
  }
}

/**
 * Clients of `address`: in plaintext unless `credentials` say otherwise;
 * `token` is sent as `authorization: Bearer <token>` with every call (unless a
 * call's own metadata sets it).
 */
export function connect(address: string, auth: { token?: string; credentials?: grpc.ChannelCredentials } = {}): Clients {
  const base = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    if (auth.token !== undefined) md.set('authorization', `Bearer ${auth.token}`);
    return md;
  };
  const credentials = auth.credentials ?? grpc.credentials.createInsecure();
  const orders = new api.shardwrite.v1.OrderService(address, credentials);
  const events = new api.shardwrite.v1.EventStoreService(address, credentials);
  const call: Clients['call'] = (method, request, options = {}) =>
    new Promise((resolve, reject) => {
      const md = base();
      for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
      const callOptions: grpc.CallOptions = options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {};
      const fn = (orders as unknown as Record<string, (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: grpc.requestCallback<CommandResult__Output>) => void>)[method]!;
      fn.call(orders, request, md, callOptions, (err, res) => (err ? reject(new CallError(statusOf(err))) : resolve(res!)));
    });
  return {
    orders,
    events,
    call,
    attempt: (method, request, options) =>
      call(method, request, options).then(
        (ok) => ({ ok }),
        (err: unknown) => {
          if (err instanceof CallError) return { error: err.status };
          throw err;
        },
      ),
    readStream: (aggregateType, aggregateId, fromVersion = 0) =>
      new Promise((resolve, reject) => {
        const out: Event__Output[] = [];
        const stream = events.readStream({ aggregateType, aggregateId, fromVersion: String(fromVersion) }, base());
        stream.on('data', (e: Event__Output) => out.push(e));
        stream.on('error', (err: grpc.ServiceError) => reject(new CallError(statusOf(err))));
        stream.on('end', () => resolve(out));
      }),
    close: () => {
      orders.close();
      events.close();
    },
  };
}

/** A valid PlaceOrder request for `orderId`. */
export function placeOrder(orderId: string, extra: object = {}): object {
  return {
    orderId,
    customerId: 'cust-1',
    customerEmail: 'ada@example.com',
    shippingAddress: { name: 'Ada Lovelace', line1: '12 St James Sq', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' },
    ...extra,
  };
}

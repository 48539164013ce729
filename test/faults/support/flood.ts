/**
 * An abusive client of the router: `streams` CommandStreamService streams
 * on one connection that send large commands and never read an outcome, and,
 * on a second connection (so that the streams' stalled flow-control window
 * does not hold them back), `unary` concurrent PlaceOrder calls with large bodies,
 * each sent again as soon as it is answered, however it is answered (no
 * backoff, no deadline). Every command is a valid PlaceOrder of a fresh order
 * padded to `bodyBytes` with an unknown field (which a shard skips), so each
 * one the router lets through is a real append on some shard.
 *
 * The flood respects only its own transport's backpressure (a stream waits
 * for 'drain' before writing more), so the test process stays bounded.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadProtoRoot } from '../../../src/grpc/routing-keys.js';
import { statusOf } from '../../../src/grpc/status.js';

export interface FloodOptions {
  readonly streams: number;
  readonly unary: number;
  readonly bodyBytes: number;
  /** Prefix of the flood's order ids. */
  readonly prefix: string;
  /** Connections the streams, and the unary calls, are spread over; default 1 each. */
  readonly streamConnections?: number;
  readonly unaryConnections?: number;
}

export interface FloodFigures {
  /** Unary answers by `CODE` or `CODE/REASON`. */
  readonly unary: Record<string, number>;
  /** Stream commands the client's transport took (written without backpressure). */
  readonly streamWrites: number;
  /** Stream outcomes read: always 0, the flood never reads them. */
  readonly streamOutcomesRead: number;
}

export interface Flood {
  /** Stops sending, cancels the streams and closes the channel. */
  stop(): Promise<FloodFigures>;
}

const identity = (b: Buffer): Buffer => b;
/** An unknown field number: a shard's decoder skips it. */
const PADDING_FIELD = 1000;
const STREAMED_PLACE_ORDER = 2;

export function startFlood(address: string, options: FloodOptions): Flood {
  const root = loadProtoRoot();
  const PlaceOrder = root.lookupType('shardwrite.v1.PlaceOrderRequest');
  const padding = Buffer.alloc(options.bodyBytes, 0x61);
  let n = 0;
  const placeOrder = (): Buffer => {
    const i = n++;
    const head = PlaceOrder.encode({
      // The proto root keeps the proto's field names.
      order_id: `${options.prefix}-${i}`,
      command_id: `${options.prefix}-cmd-${i}`,
      customer_id: 'attacker',
      customer_email: 'attacker@example.com',
      shipping_address: { name: 'A', line1: '1 Flood St', city: 'Berlin', postal_code: '10115', country: 'DE' },
    }).finish();
    const pad = protobuf.Writer.create()
      .uint32((PADDING_FIELD << 3) | 2)
      .uint32(padding.length)
      .finish();
    return Buffer.concat([head, pad, padding]);
  };
  const streamed = (requestId: number): Buffer => {
    const body = placeOrder();
    const w = protobuf.Writer.create()
      .uint32((1 << 3) | 2)
      .string(String(requestId))
      .uint32((STREAMED_PLACE_ORDER << 3) | 2)
      .uint32(body.length);
    return Buffer.concat([w.finish(), body]);
  };

  const channel = () =>
    new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
      'grpc.use_local_subchannel_pool': 1,
    });
  const streamClients = Array.from({ length: options.streamConnections ?? 1 }, channel);
  const unaryClients = Array.from({ length: options.unaryConnections ?? 1 }, channel);
  let stopping = false;
  const unary: Record<string, number> = {};
  let streamWrites = 0;

  const waiting = new Set<grpc.ClientUnaryCall>();
  const unaryLoop = async (_: unknown, i: number): Promise<void> => {
    const unaryClient = unaryClients[i % unaryClients.length]!;
    while (!stopping) {
      const code = await new Promise<string>((resolve) => {
        const call = unaryClient.makeUnaryRequest('/shardwrite.v1.OrderService/PlaceOrder', identity, identity, placeOrder(), new grpc.Metadata(), {}, (err) => {
          waiting.delete(call);
          if (!err) return resolve('OK');
          const status = statusOf(err);
          resolve(status.reason ? `${grpc.status[status.code]}/${status.reason}` : (grpc.status[status.code] ?? String(status.code)));
        });
        waiting.add(call);
      });
      unary[code] = (unary[code] ?? 0) + 1;
    }
  };

  const calls: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  const streamLoop = async (_: unknown, i: number): Promise<void> => {
    const call = streamClients[i % streamClients.length]!.makeBidiStreamRequest<Buffer, Buffer>('/shardwrite.v1.CommandStreamService/Execute', identity, identity, new grpc.Metadata(), {});
    calls.push(call);
    call.on('error', () => {});
    // No 'data' listener: the outcomes are never read.
    let id = 0;
    while (!stopping) {
      streamWrites++;
      if (!call.write(streamed(id++))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            call.off('drain', done);
            call.off('close', done);
            clearInterval(poll);
            resolve();
          };
          const poll = setInterval(() => stopping && done(), 100);
          call.on('drain', done);
          call.on('close', done);
        });
      }
    }
  };

  const running = Promise.all([...Array.from({ length: options.unary }, unaryLoop), ...Array.from({ length: options.streams }, streamLoop)]);

  return {
    async stop() {
      stopping = true;
      for (const call of calls) call.cancel();
      for (const call of waiting) call.cancel();
      await running;
      for (const c of [...streamClients, ...unaryClients]) c.close();
      return { unary, streamWrites, streamOutcomesRead: 0 };
    },
  };
}

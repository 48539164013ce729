/**
 * Scripted in-process servers of the public subscription services, for the
 * client's tests: they follow the proto's contract over a fixed list of
 * events and let a test break calls at chosen moments. They are not the
 * real services (those are tested end to end against real processes).
 */
import * as grpc from '@grpc/grpc-js';
import { loadApi } from '../../src/grpc/proto.js';
import type { SubscribedEvent } from '../../src/generated/shardwrite/v1/SubscribedEvent.js';
import type { SubscribeRequest__Output } from '../../src/generated/shardwrite/v1/SubscribeRequest.js';
import type { SubscribeResponse } from '../../src/generated/shardwrite/v1/SubscribeResponse.js';
import type { ConsumeRequest__Output } from '../../src/generated/shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse } from '../../src/generated/shardwrite/v1/ConsumeResponse.js';

const api = loadApi();

/** Event `i` (0-based) of stream `s<i % streams>`; its checkpoint is `i + 1` (resume after it). */
export function scriptedEvent(i: number, streams = 3): SubscribedEvent {
  const s = i % streams;
  return {
    eventId: `e${i}`,
    aggregateType: 'order-header',
    aggregateId: `o${s}`,
    streamId: `order-header-o${s}`,
    version: Math.floor(i / streams) + 1,
    type: 'OrderPlaced',
    schemaVersion: 1,
    data: JSON.stringify({ i }),
    checkpoint: String(i + 1),
    shardId: 'shard-0',
  };
}

export interface ScriptedServer {
  readonly address: string;
  /** Subscribe calls received, with their `from`. */
  readonly subscribeFroms: string[];
  /** Ack ids received, in order, per Consume session (a new array per session). */
  readonly acks: string[][];
  readonly joins: number;
  close(): Promise<void>;
}

export interface SubscriptionScript {
  readonly events: number;
  /** Break the call (UNAVAILABLE) after sending this many events in it; undefined = never. */
  readonly breakAfter?: (call: number) => number | undefined;
  /** Refuse every call with this status. */
  readonly refuse?: grpc.status;
  /** Send a bare checkpoint message after every Nth event. */
  readonly checkpointEvery?: number;
}

export interface GroupScript {
  readonly partitions: number;
  readonly eventsPerPartition: number;
  /** Break session `n` (0-based) after it sent this many events. */
  readonly breakAfter?: (session: number) => number | undefined;
}

/** Starts the scripted services on a free loopback port. */
export async function startScriptedServer(sub: SubscriptionScript, group?: GroupScript): Promise<ScriptedServer> {
  const server = new grpc.Server();
  const subscribeFroms: string[] = [];
  const acks: string[][] = [];
  let joins = 0;
  let calls = 0;
  server.addService(api.shardwrite.v1.SubscriptionService.service, {
    Subscribe(call: grpc.ServerWritableStream<SubscribeRequest__Output, SubscribeResponse>) {
      const n = calls++;
      subscribeFroms.push(call.request.from);
      if (sub.refuse !== undefined) {
        call.emit('error', { code: sub.refuse, details: 'refused by the script' });
        return;
      }
      const limit = sub.breakAfter?.(n);
      let i = call.request.from === '' ? 0 : Number(call.request.from);
      let sent = 0;
      let caughtUp = false;
      const step = () => {
        if (call.cancelled) return;
        if (limit !== undefined && sent >= limit) {
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'broken by the script' });
          return;
        }
        if (i >= sub.events) {
          if (!caughtUp) call.write({ caughtUp: {} });
          caughtUp = true;
          return; // live: the call stays open
        }
        call.write({ event: scriptedEvent(i) });
        i++;
        sent++;
        if (sub.checkpointEvery && i % sub.checkpointEvery === 0) call.write({ checkpoint: String(i) });
        setImmediate(step);
      };
      step();
    },
  });
  if (group) {
    server.addService(api.shardwrite.v1.ConsumerGroupService.service, {
      Consume(call: grpc.ServerDuplexStream<ConsumeRequest__Output, ConsumeResponse>) {
        const session = joins++;
        const received: string[] = [];
        acks.push(received);
        const limit = group.breakAfter?.(session);
        call.on('data', (m: ConsumeRequest__Output) => {
          if (m.join) {
            const partitions = Array.from({ length: group.partitions }, (_, p) => p);
            call.write({ assignment: { memberId: `m${session}`, partitions, partitionCount: group.partitions } });
            // Resume each partition after its last ack in any earlier session (cumulative acks).
            const next = partitions.map((p) => {
              const last = acks
                .flat()
                .filter((a) => a.startsWith(`${p}:`))
                .map((a) => Number(a.split(':')[1]));
              return last.length === 0 ? 0 : Math.max(...last) + 1;
            });
            let sent = 0;
            for (let k = 0; k < group.eventsPerPartition; k++) {
              for (const p of partitions) {
                if (k < next[p]!) continue;
                if (limit !== undefined && sent >= limit) {
                  setTimeout(() => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'broken by the script' }), 20);
                  return;
                }
                const i = p * group.eventsPerPartition + k;
                call.write({ event: { event: { ...scriptedEvent(i, 1), streamId: `s${p}`, version: k + 1 }, ackId: `${p}:${k}`, partition: p } });
                sent++;
              }
            }
          } else if (m.ack) {
            received.push(...m.ack.ackIds);
          }
        });
        call.on('end', () => call.end());
      },
    });
  }
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    address: `127.0.0.1:${port}`,
    subscribeFroms,
    acks,
    get joins() {
      return joins;
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

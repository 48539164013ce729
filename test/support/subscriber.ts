/** A test subscriber: follows `SubscriptionService.Subscribe` and records what arrives. */
import * as grpc from '@grpc/grpc-js';
import { loadApi } from '../../src/grpc/proto.js';
import type { SubscribeResponse__Output } from '../../src/generated/shardwrite/v1/SubscribeResponse.js';
import type { SubscribedEvent__Output } from '../../src/generated/shardwrite/v1/SubscribedEvent.js';

const api = loadApi();

export interface TestSubscriber {
  readonly events: SubscribedEvent__Output[];
  readonly responses: SubscribeResponse__Output[];
  /** The last checkpoint seen (an event's or a checkpoint message's). */
  lastCheckpoint(): string | undefined;
  caughtUp(): boolean;
  error(): grpc.ServiceError | undefined;
  /** Resolves when `predicate` holds, polling; rejects after `ms`. */
  until(predicate: () => boolean, ms?: number, what?: string): Promise<void>;
  close(): void;
}

/** `token`: sent as `authorization: Bearer <token>`. */
export function subscribe(address: string, request: { from?: string; aggregateTypes?: string[]; eventTypes?: string[]; token?: string } = {}): TestSubscriber {
  const client = new api.shardwrite.v1.SubscriptionService(address, grpc.credentials.createInsecure());
  const events: SubscribedEvent__Output[] = [];
  const responses: SubscribeResponse__Output[] = [];
  let checkpoint: string | undefined;
  let caughtUp = false;
  let failure: grpc.ServiceError | undefined;
  const md = new grpc.Metadata();
  if (request.token !== undefined) md.set('authorization', `Bearer ${request.token}`);
  const call = client.subscribe({ from: request.from ?? '', aggregateTypes: request.aggregateTypes ?? [], eventTypes: request.eventTypes ?? [] }, md);
  call.on('data', (r: SubscribeResponse__Output) => {
    responses.push(r);
    if (r.event) {
      events.push(r.event);
      checkpoint = r.event.checkpoint;
    } else if (r.checkpoint) checkpoint = r.checkpoint;
    else if (r.caughtUp) caughtUp = true;
  });
  call.on('error', (err: grpc.ServiceError) => {
    if (err.code !== grpc.status.CANCELLED) failure = err;
  });
  return {
    events,
    responses,
    lastCheckpoint: () => checkpoint,
    caughtUp: () => caughtUp,
    error: () => failure,
    async until(predicate, ms = 20_000, what = 'condition') {
      const end = Date.now() + ms;
      while (!predicate()) {
        if (failure) throw new Error(`subscription failed: ${failure.message}`);
        if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${events.length} events so far)`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}

/** Per stream, the versions in arrival order. */
export function versionsByStream(events: readonly SubscribedEvent__Output[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const e of events) {
    const list = out.get(e.streamId) ?? [];
    list.push(Number(e.version));
    out.set(e.streamId, list);
  }
  return out;
}

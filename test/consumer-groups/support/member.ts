/** A consumer-group member for tests: joins over gRPC, records what it gets, acks when told. */
import * as grpc from '@grpc/grpc-js';
import type { Assignment__Output } from '../../../src/generated/shardwrite/v1/Assignment.js';
import type { ConsumeRequest } from '../../../src/generated/shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse__Output } from '../../../src/generated/shardwrite/v1/ConsumeResponse.js';
import type { GroupEvent__Output } from '../../../src/generated/shardwrite/v1/GroupEvent.js';
import type { JoinGroup } from '../../../src/generated/shardwrite/v1/JoinGroup.js';
import { loadApi } from '../../../src/grpc/proto.js';
import { statusOf, type RpcStatus } from '../../../src/grpc/status.js';

const api = loadApi();

type ConsumerGroupClient = grpc.Client & { consume(metadata?: grpc.Metadata): grpc.ClientDuplexStream<ConsumeRequest, ConsumeResponse__Output> };

export interface MemberOptions {
  /** Ack each event as soon as it arrives. */
  readonly autoAck?: boolean;
  /** Call metadata (e.g. `authorization`). */
  readonly metadata?: Record<string, string>;
}

export class TestMember {
  readonly events: GroupEvent__Output[] = [];
  readonly assignments: Assignment__Output[] = [];
  /** How the call ended: OK, or the rich status of the error. */
  readonly ended: Promise<RpcStatus>;
  readonly #client: ConsumerGroupClient;
  readonly #call: grpc.ClientDuplexStream<ConsumeRequest, ConsumeResponse__Output>;
  #autoAck: boolean;
  #endedWith: RpcStatus | undefined;

  constructor(address: string, join: JoinGroup, options: MemberOptions = {}) {
    this.#autoAck = options.autoAck ?? false;
    this.#client = new api.shardwrite.v1.ConsumerGroupService(address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) metadata.set(k, v);
    this.#call = this.#client.consume(metadata);
    this.#call.on('data', (msg: ConsumeResponse__Output) => {
      if (msg.assignment) this.assignments.push(msg.assignment);
      if (msg.event) {
        this.events.push(msg.event);
        if (this.#autoAck) this.ack([msg.event]);
      }
    });
    this.ended = new Promise((resolve) => {
      this.#call.on('error', (err: grpc.ServiceError) => resolve((this.#endedWith = statusOf(err))));
      this.#call.on('status', (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) resolve((this.#endedWith = { code: s.code, message: s.details }));
      });
    });
    this.#call.write({ join });
  }

  get memberId(): string | undefined {
    return this.assignments.at(-1)?.memberId;
  }

  /** The partitions of the latest assignment. */
  get partitions(): number[] {
    return [...(this.assignments.at(-1)?.partitions ?? [])].sort((a, b) => a - b);
  }

  get isEnded(): boolean {
    return this.#endedWith !== undefined;
  }

  set autoAck(on: boolean) {
    this.#autoAck = on;
  }

  ack(events: readonly GroupEvent__Output[]): void {
    if (events.length > 0 && !this.isEnded) this.#call.write({ ack: { ackIds: events.map((e) => e.ackId) } });
  }

  /** Acks everything received so far. */
  ackAll(): void {
    this.ack(this.events);
  }

  /** Closes its side (a graceful leave) and waits for the server to end the call. */
  async leave(): Promise<RpcStatus> {
    this.#call.end();
    const status = await this.ended;
    this.#client.close();
    return status;
  }

  /** Drops the call without a goodbye, as a crash would. */
  kill(): void {
    this.#call.cancel();
    this.#client.close();
  }

  /** `stream@version` of every event received, in order. */
  received(): string[] {
    return this.events.map((e) => `${e.event!.streamId}@${e.event!.version}`);
  }
}

/** Polls `condition` every 10 ms until it holds; fails with `what` after `timeoutMs`. */
export async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

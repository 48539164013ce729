/**
 * The router's links to its shards: one long-lived ShardLink stream per
 * shard (`shardwrite.internal.v1`), carrying every caller's commands for it,
 * unary and streamed alike, in batches.
 *
 * A command is an encoded StreamedCommand with its routing key, the caller's
 * deadline and metadata. It is sent to the owner of its key at the router's
 * ring; commands sent in one turn of the event loop leave as one batch (no
 * timer: a batch holds what arrived while the last one was written), so the
 * per-message cost of gRPC is paid per batch. The shard answers each command
 * with an encoded StreamedOutcome. A WRONG_SHARD outcome refreshes the ring up
 * to the shard's epoch and resends the command once (safe: a shard refuses
 * WRONG_SHARD before it appends anything). A shard that is down, or whose
 * link breaks, costs only the commands routed to it: each gets its own
 * UNAVAILABLE (SHARD_UNAVAILABLE) answer.
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { DeadlineExceededError, ShardUnavailableError } from '../src/errors.js';
import { LINK_BATCH_BYTES, decodeBatch, encodeBatch, encodeHeaders, encodedFrameSize, outcomeError, type DecodedFrame, type LinkFrame } from '../src/grpc/link-codec.js';
import { deadlineOf } from '../src/grpc/server.js';
import type { LinkDefinition } from '../src/grpc/proto.js';
import { decodeStatus } from '../src/grpc/status.js';
import type { Logger } from '../src/observability/logger.js';
import type { RingWatcher } from '../src/ring/index.js';
import type { RouterMetrics } from './metrics.js';
import type { ShardPool, ShardTarget } from './shard-pool.js';

/** One command for a shard, and where its answer goes. */
export interface LinkCommand {
  /** The routing key (the aggregate id). */
  readonly key: string;
  /** An encoded StreamedCommand. */
  readonly body: Uint8Array;
  /** The caller's absolute deadline (ms since epoch), if any. */
  readonly deadline: number | undefined;
  /** The caller's metadata, encoded once (`linkCaller`). */
  readonly headers: Uint8Array;
  /**
   * Called exactly once: with the shard's encoded StreamedOutcome, or with an
   * error of the router's own (no ring, shard unavailable, deadline passed).
   * `shard` is the shard that answered or was chosen ("none" before routing).
   */
  settle(shard: string, outcome: Buffer | undefined, err: unknown): void;
}

export interface ShardLinksDeps {
  readonly link: LinkDefinition;
  readonly watcher: RingWatcher;
  readonly pool: ShardPool;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
}

const MAX_ID = 0xffffffff;

interface Sent {
  readonly command: LinkCommand;
  readonly retried: boolean;
}

interface Link {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly shard: string;
  readonly pending: Map<number, Sent>;
  next: number;
  out: LinkFrame[];
  outBytes: number;
  /** Set once the stream failed or ended: its commands were answered, nothing more is written. */
  broken: boolean;
}

export class ShardLinks {
  readonly #links = new Map<string, Link>();

  constructor(private readonly deps: ShardLinksDeps) {}

  /** Sends a command to the owner of its key; its answer comes through `settle`. */
  send(command: LinkCommand): void {
    this.#dispatch({ command, retried: false });
  }

  /** Cancels the links (after the server stopped: nothing is pending any more). */
  close(): void {
    for (const link of this.#links.values()) link.call.cancel();
    this.#links.clear();
  }

  #dispatch(sent: Sent): void {
    const { command } = sent;
    const view = this.deps.watcher.view;
    if (!view) return command.settle('none', undefined, new ShardUnavailableError('the router has no ring yet'));
    const owner = view.ownerOf(command.key);
    const target = this.deps.pool.get(owner.id);
    if (!target || target.breakerOpen()) {
      return command.settle(owner.id, undefined, new ShardUnavailableError(`shard ${owner.id} is unavailable`));
    }
    let timeoutMs = 0;
    if (command.deadline !== undefined) {
      timeoutMs = Math.ceil(command.deadline - Date.now());
      if (timeoutMs <= 0) return command.settle(owner.id, undefined, new DeadlineExceededError());
    }
    const link = this.#link(target);
    const id = link.next;
    link.next = id === MAX_ID ? 1 : id + 1;
    link.pending.set(id, sent);
    const frame: LinkFrame = { id, body: command.body, timeoutMs: Math.min(timeoutMs, MAX_ID), headers: command.headers };
    const size = encodedFrameSize(frame);
    if (link.out.length > 0 && link.outBytes + size > LINK_BATCH_BYTES) this.#flush(link);
    if (link.out.length === 0) setImmediate(() => this.#flush(link));
    link.out.push(frame);
    link.outBytes += size;
  }

  #flush(link: Link): void {
    if (link.out.length === 0) return;
    if (link.broken) {
      link.out = [];
      return;
    }
    const batch = encodeBatch(link.out);
    link.out = [];
    link.outBytes = 0;
    // Not paused on a full buffer: what a link holds is bounded by what the callers may have in flight.
    link.call.write(batch);
  }

  #link(target: ShardTarget): Link {
    const linkKey = `${target.id}\n${target.address}`;
    const existing = this.#links.get(linkKey);
    if (existing) return existing;
    const call = target.client.makeBidiStreamRequest<Buffer, Buffer>(this.deps.link.path, (b) => b, (b) => b, new grpc.Metadata(), {});
    const link: Link = { call, shard: target.id, pending: new Map(), next: 1, out: [], outBytes: 0, broken: false };
    this.#links.set(linkKey, link);
    call.on('data', (batch: Buffer) => this.#answers(link, batch));
    const broken = (why: string) => {
      link.broken = true;
      if (this.#links.get(linkKey) === link) this.#links.delete(linkKey);
      if (link.pending.size === 0) return;
      this.deps.logger.warn({ shard: target.id, pending: link.pending.size, why }, 'link to shard broke');
      // The shard may have died or moved: tell the breaker and the ring watcher.
      target.fire(() => Promise.reject(new Error(`link broke: ${why}`))).catch(() => {});
      this.deps.watcher.nudge();
      const err = new ShardUnavailableError(`the link to shard ${target.id} broke (${why}); the outcome is unknown — retry with the same command_id`);
      const lost = [...link.pending.values()];
      link.pending.clear();
      for (const sent of lost) sent.command.settle(target.id, undefined, err);
    };
    call.on('error', (err: grpc.ServiceError) => broken(err.details || grpc.status[err.code] || 'error'));
    call.on('end', () => broken('ended'));
    return link;
  }

  #answers(link: Link, batch: Buffer): void {
    let frames: DecodedFrame[];
    try {
      frames = decodeBatch(batch);
    } catch (err) {
      this.deps.logger.error({ err, shard: link.shard }, 'undecodable batch from a shard');
      return;
    }
    for (const f of frames) {
      const sent = link.pending.get(f.id);
      if (!sent) continue;
      link.pending.delete(f.id);
      const epoch = sent.retried ? undefined : wrongShardEpoch(f.body);
      if (epoch === undefined) {
        sent.command.settle(link.shard, f.body, undefined);
        continue;
      }
      const original = sent.command;
      const retry: Sent = {
        retried: true,
        command: {
          ...original,
          settle: (shard, answer, err) => {
            this.deps.metrics.wrongShardRetries.inc({ outcome: answer && !outcomeError(answer) ? 'ok' : 'error' });
            original.settle(shard, answer, err);
          },
        },
      };
      const resend = () => this.#dispatch(retry);
      void this.deps.watcher.refresh(epoch).then(resend, resend);
    }
  }
}

/**
 * What a link frame carries of a caller's call: its deadline, and every text
 * entry of its metadata but `user-agent` (grpc-js already took the hop headers
 * — grpc-timeout, content-type, te, encodings — out of it on arrival), encoded
 * once. Binary (`-bin`) entries are not forwarded.
 */
export function linkCaller(call: { getDeadline(): grpc.Deadline; metadata: grpc.Metadata }): Pick<LinkCommand, 'deadline' | 'headers'> {
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(call.metadata.getMap())) {
    if (typeof value === 'string' && key !== 'user-agent') entries.push([key, value]);
  }
  return { deadline: deadlineOf(call), headers: encodeHeaders(entries) };
}

/** The epoch a WRONG_SHARD outcome reports (0 when it names none); undefined for any other outcome. */
function wrongShardEpoch(outcome: Buffer): number | undefined {
  const error = outcomeError(outcome);
  if (!error) return undefined;
  try {
    const status = decodeStatus(error);
    if (status.reason !== 'WRONG_SHARD') return undefined;
    const epoch = Number(status.metadata?.epoch ?? 0);
    return Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0;
  } catch {
    return undefined;
  }
}

/**
 * The unary methods a link can carry, from the proto definitions: a method
 * whose request type is a member of StreamedCommand's `command` oneof and
 * whose response type is StreamedOutcome's `result` is the same command as
 * that streamed one. Maps the request type's full name to its oneof field
 * number (the request is sent wrapped in that field).
 */
export function linkedCommands(root: protobuf.Root): { fields: ReadonlyMap<string, number>; resultType: string } {
  const command = root.lookupType('shardwrite.v1.StreamedCommand');
  const outcome = root.lookupType('shardwrite.v1.StreamedOutcome');
  const result = outcome.fields.result;
  result?.resolve();
  const fields = new Map<string, number>();
  for (const member of command.oneofs.command?.fieldsArray ?? []) {
    member.resolve();
    if (member.resolvedType) fields.set(member.resolvedType.fullName.slice(1), member.id);
  }
  return { fields, resultType: result?.resolvedType?.fullName.slice(1) ?? '' };
}

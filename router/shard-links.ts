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
 *
 * Bounded: a command is sent only once admitted (`admission.ts`: calls and
 * bytes in flight router-wide, per shard and per connection), else it is
 * answered OVERLOADED at once. A link whose stream stops taking writes (the
 * shard reads slowly, or not at all) is written to again only on 'drain';
 * meanwhile its commands wait in its queue, which holds only admitted
 * commands and so is bounded by the shard's byte budget.
 *
 * A stalled shard (a paused or hung process: the connection stays up, but
 * nothing answers) costs only its own commands: when a link has commands
 * waiting and has answered nothing for half of `stallMs`, the shard is asked
 * for its health with the other half as deadline. Without an answer the shard
 * counts as stalled: the commands waiting on it are answered UNAVAILABLE
 * (outcome unknown: retry with the same command_id) and new ones are refused
 * at once, unsent, until it answers a probe or a command again.
 *
 * Silence is suspect only where an answer is due. A command for an aggregate
 * that the rebalance under way moves away from its shard may be held there on
 * purpose (up to the shard's MOVE_WAIT_MS, longer than `stallMs`) while its
 * stream is sealed, so it does not start the stall clock: a link carrying only
 * such commands — all of a leaving shard's — is not probed, and a probe that
 * was slow on a busy machine can no longer fail the moving commands the
 * shard is holding. And a probe only proves a stall over a connection that is
 * up: while the channel connects (a shard just added to the ring), the time
 * goes on connecting, which is the breaker's and the link's business.
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { CALLER_KEY, callerKey, identityOfMetadata } from '../src/auth/identity.js';
import { DeadlineExceededError, ShardUnavailableError } from '../src/errors.js';
import { LINK_BATCH_BYTES, decodeBatch, encodeBatch, encodeHeaders, encodedFrameSize, outcomeError, wrapField, type DecodedFrame } from '../src/grpc/link-codec.js';
import { typeUrlOf } from '../src/grpc/packed.js';
import { deadlineOf } from '../src/grpc/server.js';
import type { LinkDefinition } from '../src/grpc/proto.js';
import { decodeStatus, toRpcStatus, wrongShardEpoch } from '../src/grpc/status.js';
import { varintField } from '../src/grpc/wire-scan.js';
import type { Logger } from '../src/observability/logger.js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TRACEPARENT, TRACESTATE, UNSAMPLED, formatTraceparent, startRpcSpan, type Context, type Span, type Tracer } from '../src/observability/tracing.js';
import type { RingWatcher } from '../src/ring/index.js';
import type { Admission, Ticket } from './admission.js';
import { LinkQueue, type QueuedFrame } from './link-queue.js';
import type { RouterMetrics } from './metrics.js';
import type { ShardPool, ShardTarget } from './shard-pool.js';

/**
 * How long a shard with commands waiting may go without answering anything
 * (a command or a health probe) before it counts as stalled.
 * @default 1000
 */
export const DEFAULT_SHARD_STALL_MS = 1000;

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
/** An empty HealthCheckRequest: the server's overall health. */
const HEALTH_REQUEST = Buffer.alloc(0);

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
  /** Whom the command counts against in the budgets' shares and the link's fair queue (`callerKey`). */
  readonly caller: string;
  /** The RPC the command came as (`shardwrite.v1.OrderService/PlaceOrder`), naming its span. */
  readonly rpc: string;
  /** The caller's trace context (what its call's span or `traceparent` says), when tracing is on. */
  readonly traceParent?: Context;
  /**
   * When tracing is on, what the frame carries instead of `headers` if the
   * command's span at the router is not sampled (`linkCaller`).
   */
  readonly unsampledHeaders?: Uint8Array;
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
  readonly admission: Admission;
  /** See `DEFAULT_SHARD_STALL_MS`. */
  readonly stallMs: number;
  /** Tracing: a span per command, its context carried in the command's frame (undefined: off). */
  readonly tracer?: Tracer;
}

const MAX_ID = 0xffffffff;

interface Sent {
  readonly command: LinkCommand;
  /** What its frame carries: the command's `headers`, with its span's context when traced (`traced`). */
  readonly headers: Uint8Array;
  /** The command's span at the router, when traced: ended when the command is answered (`#settle`). */
  readonly span?: Span;
  readonly retried: boolean;
  /** Its shard may hold it while a move seals its stream (its aggregate moves away under the pending ring): no answer is due soon. */
  held?: boolean;
  /** Its claim on the budgets, once admitted. */
  ticket?: Ticket;
}

/**
 * Batch bytes handed to a link's stream and not yet sent on: beyond this,
 * frames wait in the link's fair queue rather than in the stream's buffer
 * (where they would leave first come, first served).
 */
const LINK_WRITE_AHEAD_BYTES = 2 * LINK_BATCH_BYTES;

interface Link {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly target: ShardTarget;
  readonly shard: string;
  readonly pending: Map<number, Sent>;
  /** How many of `pending` are not `held`: the commands whose answers are due (the stall clock runs while there are any). */
  due: number;
  next: number;
  /** Frames not written yet: this turn's, and those held back by the stream's backpressure. */
  readonly queue: LinkQueue;
  /** A flush is scheduled for the end of this turn. */
  flushing: boolean;
  /** False from a write the stream refused (`write()` returned false) until its 'drain'. */
  writable: boolean;
  /** Bytes written to the stream whose write has not completed yet. */
  unsent: number;
  /** Set once the stream failed or ended: its commands were answered, nothing more is written. */
  broken: boolean;
  /** When the shard last answered on this link, or the link last went from no command due to one. */
  progressAt: number;
  /** The shard answered neither commands nor a health probe: commands are refused until it does. */
  stalled: boolean;
  /** A health probe is on its way. */
  probing: boolean;
}

export class ShardLinks {
  readonly #links = new Map<string, Link>();
  readonly #stallTimer: NodeJS.Timeout;

  constructor(private readonly deps: ShardLinksDeps) {
    this.#stallTimer = setInterval(() => this.#watchStalls(), Math.max(10, Math.floor(deps.stallMs / 4)));
    this.#stallTimer.unref();
  }

  /** Sends a command to the owner of its key; its answer comes through `settle`. */
  send(command: LinkCommand): void {
    this.#dispatch(this.deps.tracer ? traced(this.deps.tracer, command) : { command, headers: command.headers, retried: false });
  }

  /** Cancels the links (after the server stopped: nothing is pending any more). */
  close(): void {
    clearInterval(this.#stallTimer);
    for (const link of this.#links.values()) link.call.cancel();
    this.#links.clear();
  }

  /** Gives back the command's budget, ends its span, then answers it. */
  #settle(sent: Sent, shard: string, outcome: Buffer | undefined, err: unknown): void {
    sent.ticket?.release();
    sent.ticket = undefined;
    if (sent.span) endSpan(sent.span, shard, outcome, err);
    sent.command.settle(shard, outcome, err);
  }

  #dispatch(sent: Sent): void {
    const { command } = sent;
    const view = this.deps.watcher.view;
    if (!view) return this.#settle(sent, 'none', undefined, new ShardUnavailableError('the router has no ring yet'));
    const owner = view.ownerOf(command.key);
    const target = this.deps.pool.get(owner.id);
    sent.span?.setAttribute('shardwrite.ring.epoch', view.epoch);
    if (!target || target.breakerOpen()) {
      return this.#settle(sent, owner.id, undefined, new ShardUnavailableError(`shard ${owner.id} is unavailable`));
    }
    const now = Date.now();
    let timeoutMs = 0;
    if (command.deadline !== undefined) {
      timeoutMs = Math.ceil(command.deadline - now);
      if (timeoutMs <= 0) return this.#settle(sent, owner.id, undefined, new DeadlineExceededError());
    }
    const link = this.#link(target);
    if (link.stalled) {
      return this.#settle(sent, owner.id, undefined, new ShardUnavailableError(`shard ${owner.id} is not answering; the command was not sent`));
    }
    const admitted = this.deps.admission.admit(command.caller, owner.id, command.body.length + sent.headers.length);
    if (admitted instanceof Error) return this.#settle(sent, owner.id, undefined, admitted);
    sent.ticket = admitted;
    const id = link.next;
    link.next = id === MAX_ID ? 1 : id + 1;
    const moving = this.deps.watcher.pending;
    sent.held = moving !== undefined && moving.ownerOf(command.key).id !== owner.id;
    if (!sent.held) {
      if (link.due === 0) link.progressAt = now;
      link.due++;
    }
    link.pending.set(id, sent);
    const queued: QueuedFrame = { id, body: command.body, timeoutMs: Math.min(timeoutMs, MAX_ID), headers: sent.headers, size: 0 };
    queued.size = encodedFrameSize(queued);
    link.queue.push(command.caller, queued);
    if (link.queue.bytes >= LINK_BATCH_BYTES) this.#flush(link);
    else if (!link.flushing) {
      link.flushing = true;
      setImmediate(() => {
        link.flushing = false;
        this.#flush(link);
      });
    }
  }

  /**
   * Writes the queued frames, in batches of up to LINK_BATCH_BYTES, while
   * the stream takes them and less than LINK_WRITE_AHEAD_BYTES is on its way;
   * the rest waits for a write to complete or for the stream's 'drain'.
   */
  #flush(link: Link): void {
    if (link.broken) {
      link.queue.clear();
      return;
    }
    while (link.writable && link.unsent < LINK_WRITE_AHEAD_BYTES && link.queue.length > 0) {
      const batch = encodeBatch(link.queue.take(LINK_BATCH_BYTES));
      link.unsent += batch.length;
      const taken = link.call.write(batch, () => {
        link.unsent -= batch.length;
        if (link.queue.length > 0) this.#flush(link);
      });
      if (!taken) {
        link.writable = false;
        link.call.once('drain', () => {
          link.writable = true;
          this.#flush(link);
        });
      }
    }
  }

  /** Probes the links whose shard has commands waiting and has been quiet; and, while stalled, probes it until it answers. */
  #watchStalls(): void {
    const now = Date.now();
    const quietMs = this.deps.stallMs / 2;
    for (const link of this.#links.values()) {
      // A shard whose breaker is open (or that left the ring) is refused by the breaker already.
      if (link.probing || link.broken || link.target.breakerOpen()) continue;
      if (link.stalled ? now - link.progressAt >= quietMs : link.due > 0 && now - link.progressAt >= quietMs) this.#probe(link);
    }
  }

  #probe(link: Link): void {
    link.probing = true;
    const startedAt = Date.now();
    try {
      this.#healthCheck(link, startedAt);
    } catch (err) {
      // The channel was closed under the link (the shard left the ring): the link is going away.
      link.probing = false;
      this.deps.logger.debug({ err, shard: link.shard }, 'could not probe a shard');
    }
  }

  #healthCheck(link: Link, startedAt: number): void {
    const channel = link.target.client.getChannel();
    const connectedAtStart = channel.getConnectivityState(false) === grpc.connectivityState.READY;
    link.target.client.makeUnaryRequest<Buffer, Buffer>(
      HEALTH_CHECK,
      (b) => b,
      (b) => b,
      HEALTH_REQUEST,
      new grpc.Metadata(),
      { deadline: startedAt + this.deps.stallMs / 2 },
      (err) => {
        link.probing = false;
        // Unreachable is the breaker's and the link's business (the link breaks); only silence is a stall.
        if (err?.code === grpc.status.UNAVAILABLE) return;
        // Any other answer (even NOT_SERVING, or an error status) shows the shard is running.
        if (err?.code !== grpc.status.DEADLINE_EXCEEDED) return this.#progress(link);
        if (link.stalled) {
          link.progressAt = Date.now();
          return;
        }
        // Time spent connecting says nothing about the shard's process (isTransportFailure agrees).
        if (!connectedAtStart || channel.getConnectivityState(false) !== grpc.connectivityState.READY) return;
        // Commands due since before the probe: the shard neither answered them nor the probe.
        if (link.progressAt <= startedAt && link.due > 0) this.#stall(link);
      },
    );
  }

  /** The shard answered: it is not (or no longer) stalled. */
  #progress(link: Link): void {
    link.progressAt = Date.now();
    if (!link.stalled) return;
    link.stalled = false;
    this.deps.logger.info({ shard: link.shard }, 'shard answers again');
  }

  #stall(link: Link): void {
    link.stalled = true;
    link.progressAt = Date.now();
    this.deps.logger.warn({ shard: link.shard, pending: link.pending.size, stallMs: this.deps.stallMs }, 'shard is not answering: refusing its commands until it does');
    // Frames not written yet are dropped with their commands; a late answer to a written one finds nothing pending.
    link.queue.clear();
    const err = new ShardUnavailableError(`shard ${link.shard} is not answering; the outcome is unknown — retry with the same command_id`);
    const lost = [...link.pending.values()];
    link.pending.clear();
    link.due = 0;
    for (const sent of lost) this.#settle(sent, link.shard, undefined, err);
  }

  #link(target: ShardTarget): Link {
    const linkKey = `${target.id}\n${target.address}`;
    const existing = this.#links.get(linkKey);
    if (existing) return existing;
    const call = target.client.makeBidiStreamRequest<Buffer, Buffer>(
      this.deps.link.path,
      (b) => b,
      (b) => b,
      new grpc.Metadata(),
      {},
    );
    const link: Link = {
      call,
      target,
      shard: target.id,
      pending: new Map(),
      due: 0,
      next: 1,
      queue: new LinkQueue(),
      flushing: false,
      writable: true,
      unsent: 0,
      broken: false,
      progressAt: Date.now(),
      stalled: false,
      probing: false,
    };
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
      link.due = 0;
      for (const sent of lost) this.#settle(sent, target.id, undefined, err);
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
    this.#progress(link);
    for (const f of frames) {
      const sent = link.pending.get(f.id);
      if (!sent) continue;
      link.pending.delete(f.id);
      if (!sent.held) link.due--;
      const epoch = sent.retried ? undefined : outcomeWrongShardEpoch(f.body);
      if (epoch === undefined) {
        this.#settle(sent, link.shard, f.body, undefined);
        continue;
      }
      sent.ticket?.release();
      sent.ticket = undefined;
      const original = sent.command;
      sent.span?.addEvent('wrong_shard', { 'shardwrite.shard': link.shard, 'shardwrite.ring.epoch': epoch });
      const retry: Sent = {
        retried: true,
        headers: sent.headers,
        ...(sent.span ? { span: sent.span } : {}),
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
 * A command with its span at the router (`CLIENT`: the hop to its shard, named
 * by the RPC it came as, a child of the caller's context), whose context the
 * command's frame carries as its own `traceparent` (and `tracestate`) header:
 * per command, though frames travel in batches. The span ends when the
 * command is answered (`endSpan`). A span that is not sampled is dropped at
 * once: the frame carries the caller's own context and the `UNSAMPLED` mark
 * (`linkCaller`), and nothing is done when it is answered.
 */
function traced(tracer: Tracer, command: LinkCommand): Sent {
  const span = startRpcSpan(tracer, command.rpc, SpanKind.CLIENT, command.traceParent ?? ROOT_CONTEXT);
  if (!span.isRecording()) return { command, headers: command.unsampledHeaders ?? command.headers, retried: false };
  // The W3C trace context of the span, written as the propagator would, straight onto the frame.
  const sc = span.spanContext();
  const state = sc.traceState?.serialize();
  const context: [string, string][] = [[TRACEPARENT, formatTraceparent(sc)]];
  if (state) context.push([TRACESTATE, state]);
  return { command, headers: encodeHeaders(context, command.headers), span, retried: false };
}

/** Ends a command's span at the router with the shard that answered and the answer's status code. */
function endSpan(span: Span, shard: string, outcome: Buffer | undefined, err: unknown): void {
  const error = outcome ? outcomeError(outcome) : undefined;
  const code: number = outcome ? (error ? varintField(error, 1) : grpc.status.OK) : toRpcStatus(err).code;
  span.setAttribute('shardwrite.shard', shard);
  span.setAttribute('rpc.grpc.status_code', code);
  if (code !== (grpc.status.OK as number)) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
  span.end();
}

/**
 * What a link frame carries of a caller's call: its deadline, and every text
 * entry of its metadata but `user-agent` and `authorization` (grpc-js already
 * took the hop headers — grpc-timeout, content-type, te, encodings — out of it
 * on arrival), encoded once, and whom it counts against (`callerKey`: its
 * principal, else its connection), also sent to the shard as `CALLER_KEY` so
 * that the shard's own budget is shared by the same callers (a value the
 * caller sent under that name is dropped). Binary (`-bin`)
 * entries are not forwarded. The caller's identity travels as the identity
 * entries the router's auth interceptor set after verifying the token, so each
 * frame carries its caller's principal, tenant and scopes and the shard does
 * not verify the token again; the token itself never goes over the link.
 * When `traced`, the caller's `traceparent` and `tracestate` are left out of
 * `headers`: each command's frame carries its router span's context instead
 * (`traced`); and `unsampledHeaders`, for a command whose span is not sampled,
 * keeps them and adds the `UNSAMPLED` mark (both encoded here, once per call).
 */
export function linkCaller(
  call: { getDeadline(): grpc.Deadline; getPeer(): string; metadata: grpc.Metadata },
  traced: boolean,
): Pick<LinkCommand, 'deadline' | 'headers' | 'caller' | 'unsampledHeaders'> {
  const entries: [string, string][] = [];
  const context: [string, string][] = [];
  for (const [key, value] of Object.entries(call.metadata.getMap())) {
    if (typeof value !== 'string' || key === 'user-agent' || key === 'authorization' || key === CALLER_KEY || key === UNSAMPLED) continue;
    // Traced, each frame carries the context of its command's span at the router instead.
    if (traced && (key === TRACEPARENT || key === TRACESTATE)) context.push([key, value]);
    else entries.push([key, value]);
  }
  const caller = callerKey(identityOfMetadata(call.metadata), call.getPeer());
  entries.push([CALLER_KEY, encodeURIComponent(caller)]);
  const headers = encodeHeaders(entries);
  if (!traced) return { deadline: deadlineOf(call), headers, caller };
  return { deadline: deadlineOf(call), headers, caller, unsampledHeaders: encodeHeaders([...entries, ...context, [UNSAMPLED, '1']]) };
}

/** The epoch a WRONG_SHARD outcome reports (0 when it names none); undefined for any other outcome. */
function outcomeWrongShardEpoch(outcome: Buffer): number | undefined {
  const error = outcomeError(outcome);
  if (!error) return undefined;
  try {
    return wrongShardEpoch(decodeStatus(error));
  } catch {
    return undefined;
  }
}

/** The unary commands a link can carry, and how each request goes over it. */
export interface LinkedCommands {
  /** The response type of a command RPC: StreamedOutcome's `result` (`shardwrite.v1.CommandResult`). */
  readonly resultType: string;
  /**
   * How a unary command with request message `requestType` (full name) is
   * sent as a StreamedCommand: wrapped in the oneof member of that type, or
   * else packed in the `google.protobuf.Any` member; undefined when neither
   * exists.
   */
  wrap(requestType: string): ((request: Uint8Array) => Buffer) | undefined;
}

/**
 * The unary methods a link can carry, from the proto definitions: a method
 * whose response type is StreamedOutcome's `result` is a command, and goes
 * over the link as the streamed command it is — in its request type's member
 * of StreamedCommand's `command` oneof, or, for a request type without one
 * (a command service added later), packed in its `google.protobuf.Any`
 * member. Field numbers come from the loaded proto.
 */
export function linkedCommands(root: protobuf.Root): LinkedCommands {
  const command = root.lookupType('shardwrite.v1.StreamedCommand');
  const outcome = root.lookupType('shardwrite.v1.StreamedOutcome');
  const result = outcome.fields.result;
  result?.resolve();
  const members = new Map<string, number>();
  let pack: ((requestType: string) => (request: Uint8Array) => Buffer) | undefined;
  for (const member of command.oneofs.command?.fieldsArray ?? []) {
    member.resolve();
    const type = member.resolvedType;
    if (!type) continue;
    const name = type.fullName.slice(1);
    if (name === 'google.protobuf.Any' && 'fields' in type) {
      const typeUrl = type.fields.type_url!.id;
      const value = type.fields.value!.id;
      pack = (requestType) => {
        const url = wrapField(typeUrl, Buffer.from(typeUrlOf(requestType), 'utf8'));
        return (request) => wrapField(member.id, Buffer.concat([url, wrapField(value, request)]));
      };
    } else {
      members.set(name, member.id);
    }
  }
  return {
    resultType: result?.resolvedType?.fullName.slice(1) ?? '',
    wrap(requestType) {
      const id = members.get(requestType);
      if (id !== undefined) return (request) => wrapField(id, request);
      return pack?.(requestType);
    },
  };
}

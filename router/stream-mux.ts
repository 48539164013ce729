/**
 * Bidirectional command streams through the router (CommandStreamService).
 *
 * Each command read from a caller's stream is routed on its own: the router
 * scans its bytes for the routing key (inside the `command` oneof) and sends
 * it on ONE long-lived stream per shard, shared by every caller (per
 * `authorization` value, so the shard still authorizes each caller). Nothing
 * is decoded and re-encoded: the router gives each command its own id by
 * appending a second `request_id` field to the bytes (protobuf keeps the last
 * occurrence), and restores the caller's id on the outcome the same way.
 *
 * A shard that is down or breaks its stream affects only the commands routed
 * to it, each answered with its own UNAVAILABLE (SHARD_UNAVAILABLE) outcome;
 * a WRONG_SHARD outcome refreshes the ring and resends the command once.
 * Memory is bounded per caller: at most `maxInFlight` commands in flight
 * (beyond that: RESOURCE_EXHAUSTED outcomes), and the router stops reading a
 * caller that does not read its outcomes, so HTTP/2 flow control slows it.
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { DeadlineExceededError, OverloadedError, ShardUnavailableError } from '../src/errors.js';
import { fromStatusMessage, toRpcStatus, toStatusMessage, type RpcStatus } from '../src/grpc/status.js';
import type { Logger } from '../src/observability/logger.js';
import type { RingWatcher } from '../src/ring/index.js';
import type { RouterMetrics } from './metrics.js';
import type { MethodRoute } from './routing-keys.js';
import { extractDirect, hasField, varintField } from '../src/grpc/wire-scan.js';
import type { ShardPool, ShardTarget } from './shard-pool.js';

export interface StreamMuxDeps {
  readonly route: MethodRoute;
  readonly watcher: RingWatcher;
  readonly pool: ShardPool;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  /** `shardwrite.v1.StreamedOutcome`, for the outcomes the router itself answers. */
  readonly outcomeType: protobuf.Type;
  /** Commands in flight per caller stream before RESOURCE_EXHAUSTED outcomes; default 1024. */
  readonly maxInFlight: number;
  readonly overloadRetryAfterMs: number;
}

const REQUEST_ID = 1;
const ERROR_FIELD = 3;
const TIMEOUT_FIELD = 15;
const identity = (b: Buffer): Buffer => b;

/** A caller's stream. */
interface Caller {
  readonly call: grpc.ServerDuplexStream<Buffer, Buffer>;
  readonly authorization: string;
  readonly deadline: number | undefined;
  inFlight: number;
  ended: boolean;
  closed: boolean;
  finished: boolean;
  waitingForDrain: boolean;
}

/** One command between the caller and a shard. */
interface Pending {
  readonly caller: Caller;
  readonly requestId: string;
  readonly key: string;
  readonly command: Buffer;
  readonly started: number;
  retried: boolean;
  shard: string;
}

/** The shared stream to one shard (for one authorization value). */
interface Link {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly pending: Map<string, Pending>;
  next: number;
}

export class StreamMux {
  readonly #links = new Map<string, Link>();
  readonly #callers = new Set<Caller>();
  #draining = false;

  constructor(private readonly deps: StreamMuxDeps) {}

  /** The grpc-js handler for the bidirectional method. */
  readonly handler: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => {
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    const auth = call.metadata.get('authorization')[0];
    const caller: Caller = {
      call,
      authorization: typeof auth === 'string' ? auth : '',
      deadline: Number.isFinite(ms) ? ms : undefined,
      inFlight: 0,
      ended: false,
      closed: false,
      finished: false,
      waitingForDrain: false,
    };
    this.#callers.add(caller);
    call.on('data', (bytes: Buffer) => this.#accept(caller, bytes));
    call.on('end', () => {
      caller.ended = true;
      this.#finishIfDone(caller);
    });
    const gone = () => {
      caller.closed = true;
      this.#callers.delete(caller);
    };
    call.on('error', gone);
    call.on('close', gone);
  };

  /** Refuses new commands (UNAVAILABLE) and ends each caller's stream once its outcomes are out. */
  drain(): void {
    this.#draining = true;
    for (const c of this.#callers) this.#finishIfDone(c);
  }

  /** Closes the shard streams (after the server stopped). */
  close(): void {
    for (const link of this.#links.values()) link.call.cancel();
    this.#links.clear();
  }

  #accept(caller: Caller, bytes: Buffer): void {
    let requestId = '';
    let key: string;
    try {
      requestId = extractDirect(bytes, REQUEST_ID);
      key = this.deps.route.extract(bytes);
    } catch (err) {
      this.#answer(caller, requestId, err, 'none');
      return;
    }
    if (this.#draining || caller.finished) {
      this.#answer(caller, requestId, new ShardUnavailableError('the router is shutting down; retry the command'), 'none');
      return;
    }
    if (caller.inFlight >= this.deps.maxInFlight) {
      this.#answer(caller, requestId, new OverloadedError(this.deps.overloadRetryAfterMs, 'too many commands in flight on this stream'), 'none');
      return;
    }
    caller.inFlight++;
    this.#dispatch({ caller, requestId, key, command: bytes, started: performance.now(), retried: false, shard: 'none' });
  }

  /** Sends a command to the owner of its key at the router's ring. */
  #dispatch(p: Pending): void {
    const view = this.deps.watcher.view;
    if (!view) return this.#settle(p, undefined, new ShardUnavailableError('the router has no ring yet'));
    const owner = view.ownerOf(p.key);
    p.shard = owner.id;
    const target = this.deps.pool.get(owner.id);
    if (!target || target.breakerOpen()) {
      return this.#settle(p, undefined, new ShardUnavailableError(`shard ${owner.id} is unavailable`));
    }
    let timeoutMs: number | undefined;
    if (p.caller.deadline !== undefined) {
      timeoutMs = p.caller.deadline - Date.now();
      if (timeoutMs <= 0) return this.#settle(p, undefined, new DeadlineExceededError());
      const own = varintField(p.command, TIMEOUT_FIELD);
      if (own > 0 && own < timeoutMs) timeoutMs = undefined;
    }
    const link = this.#link(target, p.caller.authorization);
    const id = String(link.next++);
    link.pending.set(id, p);
    link.call.write(appendFields(p.command, id, timeoutMs));
  }

  #link(target: ShardTarget, authorization: string): Link {
    const linkKey = `${target.id}\n${target.address}\n${authorization}`;
    const existing = this.#links.get(linkKey);
    if (existing) return existing;
    const md = new grpc.Metadata();
    if (authorization) md.set('authorization', authorization);
    const call = target.client.makeBidiStreamRequest<Buffer, Buffer>(this.deps.route.path, identity, identity, md, {});
    const link: Link = { call, pending: new Map(), next: 1 };
    this.#links.set(linkKey, link);
    call.on('data', (outcome: Buffer) => this.#outcome(link, outcome));
    const broken = (why: string) => {
      if (this.#links.get(linkKey) === link) this.#links.delete(linkKey);
      if (link.pending.size > 0) this.deps.logger.warn({ shard: target.id, pending: link.pending.size, why }, 'shard command stream broke');
      const err = new ShardUnavailableError(`the stream to shard ${target.id} broke (${why}); the outcome is unknown — retry with the same command_id`);
      for (const p of link.pending.values()) this.#settle(p, undefined, err);
      link.pending.clear();
    };
    call.on('error', (err: grpc.ServiceError) => broken(err.details || grpc.status[err.code] || 'error'));
    call.on('end', () => broken('ended'));
    return link;
  }

  #outcome(link: Link, outcome: Buffer): void {
    let id: string;
    try {
      id = extractDirect(outcome, REQUEST_ID);
    } catch (err) {
      this.deps.logger.error({ err }, 'undecodable outcome from a shard');
      return;
    }
    const p = link.pending.get(id);
    if (!p) return;
    link.pending.delete(id);
    if (hasField(outcome, ERROR_FIELD)) {
      const status = this.#status(outcome);
      if (status?.reason === 'WRONG_SHARD' && !p.retried) {
        p.retried = true;
        const epoch = Number(status.metadata?.epoch ?? 0);
        void this.deps.watcher.refresh(Number.isSafeInteger(epoch) ? epoch : 0).then(
          () => this.#dispatch(p),
          () => this.#dispatch(p),
        );
        this.deps.metrics.wrongShardRetries.inc({ outcome: 'stream' });
        return;
      }
      this.#settle(p, outcome, undefined, status?.code ?? grpc.status.UNKNOWN);
      return;
    }
    this.#settle(p, outcome, undefined, grpc.status.OK);
  }

  #status(outcome: Buffer): RpcStatus | undefined {
    try {
      const decoded = this.deps.outcomeType.toObject(this.deps.outcomeType.decode(outcome), { defaults: true, longs: Number }) as {
        error?: { code: number; message: string; details: { type_url: string; value: Uint8Array }[] };
      };
      return decoded.error ? fromStatusMessage(decoded.error) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Answers one command: the shard's outcome (with the caller's id restored), or an error of the router's own. */
  #settle(p: Pending, outcome: Buffer | undefined, err: unknown, code?: grpc.status): void {
    p.caller.inFlight--;
    const status = err === undefined ? undefined : toRpcStatus(err);
    this.deps.metrics.requests.inc({ method: 'shardwrite.v1.CommandStreamService/Execute', shard: p.shard, code: grpc.status[status?.code ?? code ?? 0] });
    this.deps.metrics.seconds.observe({ method: 'shardwrite.v1.CommandStreamService/Execute', shard: p.shard }, (performance.now() - p.started) / 1000);
    const bytes = outcome ? appendFields(outcome, p.requestId, undefined) : this.#encode(p.requestId, status!);
    this.#write(p.caller, bytes);
    this.#finishIfDone(p.caller);
  }

  #answer(caller: Caller, requestId: string, err: unknown, shard: string): void {
    const status = toRpcStatus(err);
    this.deps.metrics.requests.inc({ method: 'shardwrite.v1.CommandStreamService/Execute', shard, code: grpc.status[status.code] });
    this.#write(caller, this.#encode(requestId, status));
  }

  #encode(requestId: string, status: RpcStatus): Buffer {
    const t = this.deps.outcomeType;
    return Buffer.from(t.encode(t.fromObject({ request_id: requestId, error: toStatusMessage(status) })).finish());
  }

  #write(caller: Caller, bytes: Buffer): void {
    if (caller.closed || caller.finished) return;
    if (!caller.call.write(bytes) && !caller.waitingForDrain) {
      caller.waitingForDrain = true;
      caller.call.pause();
      caller.call.once('drain', () => {
        caller.waitingForDrain = false;
        caller.call.resume();
      });
    }
  }

  #finishIfDone(caller: Caller): void {
    if ((caller.ended || this.#draining) && caller.inFlight === 0 && !caller.finished && !caller.closed) {
      caller.finished = true;
      caller.call.end();
    }
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/**
 * Appends `request_id = id` (and `timeout_ms` when given) to an encoded
 * message. Protobuf decoders keep the last occurrence of a singular field, so
 * this overrides the earlier values without decoding anything.
 */
function appendFields(message: Buffer, id: string, timeoutMs: number | undefined): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const parts = [message, Buffer.from([(REQUEST_ID << 3) | 2, ...varint(idBytes.length)]), idBytes];
  if (timeoutMs !== undefined) parts.push(Buffer.from([TIMEOUT_FIELD << 3, ...varint(Math.min(0xffffffff, Math.ceil(timeoutMs)))]));
  return Buffer.concat(parts);
}


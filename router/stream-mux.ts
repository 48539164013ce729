/**
 * Bidirectional command streams through the router (CommandStreamService).
 *
 * Each command read from a caller's stream is routed on its own: the router
 * scans its bytes for the routing key (inside the `command` oneof) and sends
 * it, unchanged, over the link to the owning shard (`shard-links.ts`), shared
 * by every caller, with the caller's deadline and metadata. The shard's
 * outcome already carries the caller's `request_id` (it is in the command the
 * shard ran), so it goes back as it came.
 *
 * A shard that is down or whose link breaks affects only the commands routed
 * to it, each answered with its own UNAVAILABLE (SHARD_UNAVAILABLE) outcome.
 * Memory is bounded per caller: at most `maxInFlight` commands in flight
 * (beyond that, or beyond the budgets of `admission.ts`: RESOURCE_EXHAUSTED
 * outcomes), and the router stops reading a caller that does not read its
 * outcomes — its read gate closes (`read-gate.ts`), so no request is read
 * ahead and HTTP/2 flow control slows the caller down.
 */
import * as grpc from '@grpc/grpc-js';
import { OverloadedError, ShardUnavailableError } from '../src/errors.js';
import { OUTCOME_ERROR, outcomeError, wrapField } from '../src/grpc/link-codec.js';
import { encodeStatus, toRpcStatus } from '../src/grpc/status.js';
import { extractDirect, varintField } from '../src/grpc/wire-scan.js';
import { extractContext, type Context } from '../src/observability/tracing.js';
import type { RouterMetrics } from './metrics.js';
import type { ReadGate, ReadGates } from './read-gate.js';
import type { MethodRoute } from '../src/grpc/routing-keys.js';
import { linkCaller, type ShardLinks } from './shard-links.js';

export interface StreamMuxDeps {
  readonly route: MethodRoute;
  readonly links: ShardLinks;
  readonly metrics: RouterMetrics;
  /** Commands in flight per caller stream before RESOURCE_EXHAUSTED outcomes; default 1024. */
  readonly maxInFlight: number;
  readonly overloadRetryAfterMs: number;
  /** The read gates of the server's calls (its interceptor must be installed). */
  readonly gates: ReadGates;
  /** Tracing is on: each command gets a span, a child of the trace context of the caller's stream. */
  readonly traced: boolean;
}

const REQUEST_ID = 1;
const METHOD = 'shardwrite.v1.CommandStreamService/Execute';

/** A caller's stream. */
interface Caller {
  readonly call: grpc.ServerDuplexStream<Buffer, Buffer>;
  readonly headers: Uint8Array;
  readonly deadline: number | undefined;
  readonly caller: string;
  readonly gate: ReadGate | undefined;
  /** The trace context of the stream's metadata (when traced). */
  readonly traceParent: Context | undefined;
  /** What a command's frame carries when its span is not sampled (when traced; `linkCaller`). */
  readonly unsampledHeaders?: Uint8Array;
  inFlight: number;
  ended: boolean;
  closed: boolean;
  finished: boolean;
  waitingForDrain: boolean;
}

export class StreamMux {
  readonly #callers = new Set<Caller>();
  #draining = false;

  constructor(private readonly deps: StreamMuxDeps) {}

  /** The grpc-js handler for the bidirectional method. */
  readonly handler: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => {
    const caller: Caller = {
      call,
      ...linkCaller(call, this.deps.traced),
      gate: this.deps.gates.of(call.metadata),
      traceParent: this.deps.traced ? extractContext((key) => textEntry(call.metadata, key)) : undefined,
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
    const started = performance.now();
    this.deps.links.send({
      key,
      body: bytes,
      deadline: caller.deadline,
      headers: caller.headers,
      caller: caller.caller,
      rpc: METHOD,
      ...(caller.traceParent ? { traceParent: caller.traceParent, unsampledHeaders: caller.unsampledHeaders } : {}),
      settle: (shard, outcome, err) => {
        caller.inFlight--;
        if (outcome) {
          const error = outcomeError(outcome);
          const code = error ? (varintField(error, 1) as grpc.status) : grpc.status.OK;
          this.deps.metrics.requests.inc({ method: METHOD, shard, code: grpc.status[code] ?? 'UNKNOWN' });
          this.deps.metrics.seconds.observe({ method: METHOD, shard }, (performance.now() - started) / 1000);
          this.#write(caller, outcome);
        } else {
          this.#answer(caller, requestId, err, shard);
        }
        this.#finishIfDone(caller);
      },
    });
  }

  /** Answers a command with an error of the router's own. */
  #answer(caller: Caller, requestId: string, err: unknown, shard: string): void {
    const status = toRpcStatus(err);
    this.deps.metrics.requests.inc({ method: METHOD, shard, code: grpc.status[status.code] });
    const id = Buffer.from(requestId, 'utf8');
    this.#write(caller, Buffer.concat([id.length > 0 ? wrapField(REQUEST_ID, id) : Buffer.alloc(0), wrapField(OUTCOME_ERROR, encodeStatus(status))]));
  }

  #write(caller: Caller, bytes: Buffer): void {
    if (caller.closed || caller.finished) return;
    if (!caller.call.write(bytes) && !caller.waitingForDrain) {
      caller.waitingForDrain = true;
      caller.gate?.close();
      caller.call.pause();
      caller.call.once('drain', () => {
        caller.waitingForDrain = false;
        caller.gate?.open();
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

/** A text metadata entry's first value. */
function textEntry(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

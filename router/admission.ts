/**
 * What the router may hold for its callers at once: calls and request bytes
 * in flight, router-wide and per shard, and — so that one caller cannot take
 * them all — per connection. A call is admitted only if it fits every budget
 * it draws on; otherwise it is refused at once (RESOURCE_EXHAUSTED /
 * OVERLOADED with a retry hint), before anything is sent to a shard.
 *
 * A connection may hold at most `connectionSharePercent` of the router-wide
 * budget and of each shard's budget, so a connection that floods the router,
 * or one shard, leaves the others a share of both.
 */
import * as grpc from '@grpc/grpc-js';
import { OverloadedError } from '../src/errors.js';
import { toServiceError } from '../src/grpc/status.js';

/**
 * The default budgets. They fit a router in 512 MiB (its Kubernetes limit):
 * an admitted request is held about twice (the caller's request and the copy
 * the link sends), so the byte budget costs at most about 2 × 48 MiB on top
 * of the process's ~120 MiB and the requests being read (`receive-slots.ts`).
 * @default calls 16,384 router-wide and 8192 per shard; bytes 48 MiB router-wide and 16 MiB per shard; a connection 25 % of each
 */
export const DEFAULT_ADMISSION = {
  maxCalls: 16_384,
  maxBytes: 48 * 1024 * 1024,
  shardMaxCalls: 8192,
  shardMaxBytes: 16 * 1024 * 1024,
  connectionSharePercent: 25,
} as const;

/** Budgets of calls and request bytes in flight. */
export interface AdmissionLimits {
  /** Calls in flight router-wide. */
  readonly maxCalls: number;
  /** Request bytes in flight router-wide. */
  readonly maxBytes: number;
  /** Calls in flight to one shard. */
  readonly shardMaxCalls: number;
  /** Request bytes in flight to one shard. */
  readonly shardMaxBytes: number;
  /** The share (1..100) of the router-wide and of each shard's budget one connection may hold. */
  readonly connectionSharePercent: number;
  /** The retry hint sent with a refusal. */
  readonly retryAfterMs: number;
}

/** What is held against one budget. */
class Held {
  calls = 0;
  bytes = 0;

  constructor(
    readonly maxCalls: number,
    readonly maxBytes: number,
  ) {}

  fits(bytes: number): boolean {
    return this.calls < this.maxCalls && (this.bytes + bytes <= this.maxBytes || this.calls === 0);
  }
}

/** One connection's holdings: in all, and per shard. */
class Connection {
  readonly total: Held;
  readonly shards = new Map<string, Held>();

  constructor(limits: AdmissionLimits) {
    this.total = new Held(share(limits.maxCalls, limits), share(limits.maxBytes, limits));
  }
}

/** A part of a budget (at least 1). */
function share(n: number, limits: AdmissionLimits): number {
  return Math.max(1, Math.floor((n * limits.connectionSharePercent) / 100));
}

/** An admitted call's claim; `release()` gives it back (once; later calls do nothing). */
export interface Ticket {
  release(): void;
}

/** Figures for metrics and tests. */
export interface AdmissionSnapshot {
  readonly calls: number;
  readonly bytes: number;
  readonly connections: number;
}

export class Admission {
  readonly #total: Held;
  readonly #shards = new Map<string, Held>();
  readonly #connections = new Map<string, Connection>();

  constructor(readonly limits: AdmissionLimits) {
    this.#total = new Held(limits.maxCalls, limits.maxBytes);
  }

  /**
   * Admits a call of `bytes` request bytes from connection `peer` to `shard`,
   * or refuses it. A single call larger than a byte budget is admitted only
   * when nothing else holds that budget (a budget never refuses every call of
   * the largest allowed size).
   *
   * @returns the ticket to release when the call is answered, or the
   *   OverloadedError to answer it with.
   */
  admit(peer: string, shard: string, bytes: number): Ticket | OverloadedError {
    const limits = this.limits;
    let shardHeld = this.#shards.get(shard);
    if (!shardHeld) this.#shards.set(shard, (shardHeld = new Held(limits.shardMaxCalls, limits.shardMaxBytes)));
    let connection = this.#connections.get(peer);
    if (!connection) this.#connections.set(peer, (connection = new Connection(limits)));
    let mine = connection.shards.get(shard);
    if (!mine) connection.shards.set(shard, (mine = new Held(share(limits.shardMaxCalls, limits), share(limits.shardMaxBytes, limits))));

    const refusal = !this.#total.fits(bytes)
      ? 'the router has too many calls in flight'
      : !shardHeld.fits(bytes)
        ? `too many calls in flight to ${shard}`
        : !connection.total.fits(bytes)
          ? 'this connection has too many calls in flight'
          : !mine.fits(bytes)
            ? `this connection has too many calls in flight to ${shard}`
            : undefined;
    if (refusal !== undefined) {
      this.#forget(peer, connection, shard, mine);
      return new OverloadedError(limits.retryAfterMs, `${refusal}; retry later`);
    }
    const held = [this.#total, shardHeld, connection.total, mine];
    for (const h of held) {
      h.calls++;
      h.bytes += bytes;
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        for (const h of held) {
          h.calls--;
          h.bytes -= bytes;
        }
        this.#forget(peer, connection, shard, mine);
      },
    };
  }

  /**
   * True when no call from `peer` could be admitted anywhere: its connection,
   * or the router, holds its whole budget of calls or bytes.
   */
  exhausted(peer: string): boolean {
    const held = this.#connections.get(peer)?.total;
    const full = (h: Held) => h.calls >= h.maxCalls || h.bytes >= h.maxBytes;
    return full(this.#total) || (held !== undefined && full(held));
  }

  /**
   * A server interceptor that refuses a unary call (OVERLOADED) as soon as its
   * headers arrive when its connection has used up its budget, so the router
   * does not read a request body it would refuse anyway. Other calls pass
   * through untouched; streams are slowed by their read gates instead.
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    if (method.requestStream || !this.exhausted(call.getPeer())) return call as grpc.ServerInterceptingCall;
    const refusing: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          // The handler never starts, so the request is never read.
          onReceiveMetadata: () => {
            const status = toServiceError(new OverloadedError(this.limits.retryAfterMs, 'this connection has too many calls in flight; retry later'));
            refusing.sendStatus({ code: status.code, details: status.details ?? '', metadata: status.metadata ?? null });
          },
        }),
    });
    return refusing;
  };

  /** Totals held right now. */
  snapshot(): AdmissionSnapshot {
    return { calls: this.#total.calls, bytes: this.#total.bytes, connections: this.#connections.size };
  }

  /** Drops a connection's entries once it holds nothing (connections come and go; the maps must not grow). */
  #forget(peer: string, connection: Connection, shard: string, mine: Held): void {
    if (mine.calls === 0) connection.shards.delete(shard);
    if (connection.total.calls === 0 && this.#connections.get(peer) === connection) this.#connections.delete(peer);
  }
}

/**
 * What the router may hold for its callers at once: calls and request bytes
 * in flight, router-wide and per shard, and — so that one caller cannot take
 * them all — per caller. A call is admitted only if it fits every budget
 * it draws on; otherwise it is refused at once (RESOURCE_EXHAUSTED /
 * OVERLOADED with a retry hint), before anything is sent to a shard.
 *
 * A caller is a principal when the call authenticated as one, else its
 * connection (`callerKey`): a principal that opens many connections still
 * holds one share. A caller may hold at most `connectionSharePercent` of the
 * router-wide budget and of each shard's budget, so a caller that floods the
 * router, or one shard, leaves the others a share of both.
 */
import * as grpc from '@grpc/grpc-js';
import { callerKey, identityOfMetadata } from '../src/auth/identity.js';
import { OverloadedError } from '../src/errors.js';
import { toServiceError } from '../src/grpc/status.js';

/**
 * The default budgets. They fit a router in 512 MiB (its Kubernetes limit):
 * an admitted request is held about twice (the caller's request and the copy
 * the link sends), so the byte budget costs at most about 2 × 48 MiB on top
 * of the process's ~120 MiB and the requests being read (`receive-slots.ts`).
 * @default calls 16,384 router-wide and 8192 per shard; bytes 48 MiB router-wide and 16 MiB per shard; a caller 25 % of each
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
  /** The share (1..100) of the router-wide and of each shard's budget one caller (principal, else connection) may hold. */
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

  /** Holds its whole budget of calls or of bytes: no call fits. */
  get full(): boolean {
    return this.calls >= this.maxCalls || this.bytes >= this.maxBytes;
  }
}

/** One caller's holdings: in all, and per shard. */
class Caller {
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
  /** Callers holding anything. */
  readonly callers: number;
}

export class Admission {
  readonly #total: Held;
  readonly #shards = new Map<string, Held>();
  readonly #callers = new Map<string, Caller>();
  /** Callers whose holdings are full (`exhausted` is true for them): while none is and the router is not, the interceptor costs nothing. */
  readonly #full = new Set<string>();

  constructor(readonly limits: AdmissionLimits) {
    this.#total = new Held(limits.maxCalls, limits.maxBytes);
  }

  /**
   * Admits a call of `bytes` request bytes from `caller` (`callerKey`) to `shard`,
   * or refuses it. A single call larger than a byte budget is admitted only
   * when nothing else holds that budget (a budget never refuses every call of
   * the largest allowed size).
   *
   * @returns the ticket to release when the call is answered, or the
   *   OverloadedError to answer it with.
   */
  admit(caller: string, shard: string, bytes: number): Ticket | OverloadedError {
    const limits = this.limits;
    let shardHeld = this.#shards.get(shard);
    if (!shardHeld) this.#shards.set(shard, (shardHeld = new Held(limits.shardMaxCalls, limits.shardMaxBytes)));
    let holder = this.#callers.get(caller);
    if (!holder) this.#callers.set(caller, (holder = new Caller(limits)));
    let mine = holder.shards.get(shard);
    if (!mine) holder.shards.set(shard, (mine = new Held(share(limits.shardMaxCalls, limits), share(limits.shardMaxBytes, limits))));

    const refusal = !this.#total.fits(bytes)
      ? 'the router has too many calls in flight'
      : !shardHeld.fits(bytes)
        ? `too many calls in flight to ${shard}`
        : !holder.total.fits(bytes)
          ? 'this caller has too many calls in flight'
          : !mine.fits(bytes)
            ? `this caller has too many calls in flight to ${shard}`
            : undefined;
    if (refusal !== undefined) {
      this.#forget(caller, holder, shard, mine);
      return new OverloadedError(limits.retryAfterMs, `${refusal}; retry later`);
    }
    const held = [this.#total, shardHeld, holder.total, mine];
    for (const h of held) {
      h.calls++;
      h.bytes += bytes;
    }
    if (holder.total.full) this.#full.add(caller);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        for (const h of held) {
          h.calls--;
          h.bytes -= bytes;
        }
        if (!holder.total.full) this.#full.delete(caller);
        this.#forget(caller, holder, shard, mine);
      },
    };
  }

  /**
   * True when no call from `caller` could be admitted anywhere: the caller,
   * or the router, holds its whole budget of calls or bytes.
   */
  exhausted(caller: string): boolean {
    return this.#total.full || this.#full.has(caller);
  }

  /**
   * A server interceptor that refuses a unary call (OVERLOADED) as soon as its
   * headers arrive when its caller has used up its budget, so the router
   * does not read a request body it would refuse anyway. It must come after
   * the authentication interceptor (later in grpc-js' list: it sees the
   * metadata after it), whose verified identity names the caller. Other
   * calls pass through untouched; streams are slowed by their read gates instead.
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    if (method.requestStream || (this.#full.size === 0 && !this.#total.full)) return call as grpc.ServerInterceptingCall;
    const refusing: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            if (!this.exhausted(callerKey(identityOfMetadata(metadata), call.getPeer()))) return pass(metadata);
            // The handler never starts, so the request is never read.
            const status = toServiceError(new OverloadedError(this.limits.retryAfterMs, 'this caller has too many calls in flight; retry later'));
            refusing.sendStatus({ code: status.code, details: status.details ?? '', metadata: status.metadata ?? null });
          },
        }),
    });
    return refusing;
  };

  /** Totals held right now. */
  snapshot(): AdmissionSnapshot {
    return { calls: this.#total.calls, bytes: this.#total.bytes, callers: this.#callers.size };
  }

  /** Drops a caller's entries once it holds nothing (callers come and go; the maps must not grow). */
  #forget(caller: string, holder: Caller, shard: string, mine: Held): void {
    if (mine.calls === 0) holder.shards.delete(shard);
    if (holder.total.calls === 0 && this.#callers.get(caller) === holder) this.#callers.delete(caller);
  }
}

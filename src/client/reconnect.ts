/**
 * How the long-lived client calls (subscriptions, consumer-group sessions)
 * come back after a broken connection: exponential backoff with full jitter,
 * capped, reset once a new call delivers something.
 */
import * as grpc from '@grpc/grpc-js';
import { fullJitterDelay } from '../pipeline/backoff.js';
import { STATUS_DETAILS_KEY, decodeStatus, type RpcStatus } from '../grpc/status.js';
import { StatusError } from './errors.js';

export interface ReconnectOptions {
  /** First retry's ceiling in ms (each later attempt doubles it); default {@link RECONNECT_BASE_MS}. */
  readonly baseMs?: number;
  /** Longest wait between two attempts in ms; default {@link RECONNECT_CAP_MS}. */
  readonly capMs?: number;
  /** Give up after this many attempts in a row without a message delivered; default unlimited. */
  readonly maxAttempts?: number;
}

/** @default 100 */
export const RECONNECT_BASE_MS = 100;
/** @default 5000 — a restarted router is found again within about five seconds. */
export const RECONNECT_CAP_MS = 5_000;

/** The delay before reconnect attempt `attempt` (0-based): uniform in [0, min(cap, base·2^attempt)), at least 1 ms. */
export function reconnectDelay(attempt: number, options: ReconnectOptions = {}, random: () => number = Math.random): number {
  return Math.max(1, fullJitterDelay(attempt, options.baseMs ?? RECONNECT_BASE_MS, options.capMs ?? RECONNECT_CAP_MS, random));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The rich status of a call's final `status` event (ErrorInfo reason included when the server sent one). */
export function statusFromObject(s: grpc.StatusObject): RpcStatus {
  const raw = s.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw instanceof Buffer) {
    try {
      return decodeStatus(raw);
    } catch {
      // A proxy's or a foreign server's details: fall back to the bare status.
    }
  }
  return { code: s.code, message: s.details };
}

/** The call failed in a way retrying cannot fix; `status` says how. */
export class SubscriptionRefusedError extends StatusError {
  override name = 'SubscriptionRefusedError';
}

/** Reconnecting gave up after `ReconnectOptions.maxAttempts` attempts. */
export class ReconnectExhaustedError extends Error {
  constructor(
    readonly attempts: number,
    readonly lastStatus: RpcStatus,
  ) {
    super(`gave up after ${attempts} reconnect attempts (last: ${grpc.status[lastStatus.code] ?? lastStatus.code}: ${lastStatus.message})`);
    this.name = 'ReconnectExhaustedError';
  }
}

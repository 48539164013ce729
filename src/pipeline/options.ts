/** The knobs of a shard's command pipeline, each with its default. */
import { DEFAULT_OVERLOAD_RETRY_AFTER_MS } from '../config.js';
export interface PipelineOptions {
  /** Attempts at deciding + appending when another writer raced us. @default 6 */
  readonly maxAttempts: number;
  /** Backoff base between conflict retries (full jitter). @default 5 (ms) */
  readonly retryBaseMs: number;
  /** Backoff cap between conflict retries (full jitter). @default 200 (ms) */
  readonly retryCapMs: number;
  /** Total time a command may spend retrying conflicts. @default 2000 (ms) */
  readonly retryBudgetMs: number;
  /** Bound on loading an aggregate. @default 2000 (ms) */
  readonly loadTimeoutMs: number;
  /** Commands accepted and unanswered per shard before OVERLOADED. @default 10000 */
  readonly maxInFlight: number;
  /**
   * The share (1..100) of `maxInFlight` one caller (`CallContext.caller`) may
   * hold, so one principal or connection cannot take a shard's whole budget,
   * however many routers or streams it uses. @default 25
   */
  readonly callerSharePercent: number;
  /** Commands queued per stream before OVERLOADED. @default 1000 */
  readonly maxQueuedPerStream: number;
  /** Commands decided together into one append entry. @default 256 */
  readonly maxCommandsPerEntry: number;
  /** Retry hint sent with OVERLOADED, in ms. Default {@link DEFAULT_OVERLOAD_RETRY_AFTER_MS}. */
  readonly overloadRetryAfterMs: number;
  /**
   * How long a command whose stream a rebalance is moving away waits for the
   * new ring before it is answered UNAVAILABLE / STREAM_MOVING; when the ring
   * arrives in time it is answered WRONG_SHARD instead, which the router
   * retries at the new owner. Bounded by the command's deadline. @default 2000 (ms)
   */
  readonly moveWaitMs: number;
  /**
   * Decide a command for a stream not in memory first as if the stream were
   * new, skipping the read (see `CommandPipeline`'s rounds). @default true
   */
  readonly assumeNewStreams: boolean;
}

export const DEFAULT_PIPELINE_OPTIONS: PipelineOptions = {
  maxAttempts: 6,
  retryBaseMs: 5,
  retryCapMs: 200,
  retryBudgetMs: 2000,
  loadTimeoutMs: 2000,
  maxInFlight: 10_000,
  callerSharePercent: 25,
  maxQueuedPerStream: 1_000,
  maxCommandsPerEntry: 256,
  overloadRetryAfterMs: DEFAULT_OVERLOAD_RETRY_AFTER_MS,
  moveWaitMs: 2000,
  assumeNewStreams: true,
};

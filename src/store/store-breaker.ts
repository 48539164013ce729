/**
 * The circuit breaker between a shard and its PostgreSQL (opossum). When the
 * database is down or stalls, commands fail fast with STORE_UNAVAILABLE
 * instead of piling up; the breaker half-opens after `resetTimeoutMs` and
 * closes by itself once a trial call succeeds. Domain outcomes — version
 * conflicts, duplicates, fencing — say nothing about the database's health
 * and never count as failures.
 */
import CircuitBreaker from 'opossum';
import { StoreUnavailableError, isExpectedOutcome } from '../errors.js';
import type { AppendEntry, AppendResult, Appender, CommandRecord, EventReader, SnapshotStore, StoredEvent } from './types.js';

/** A store call slower than this counts as a breaker failure. @default 3000 (ms) */
export const DEFAULT_STORE_CALL_TIMEOUT_MS = 3000;
/** The rolling window a store breaker measures failures over. @default 2000 (ms) */
export const DEFAULT_STORE_BREAKER_WINDOW_MS = 2000;
/** How long an open store breaker waits before a trial call. @default 1000 (ms) */
export const DEFAULT_STORE_BREAKER_RESET_MS = 1000;

export interface StoreBreakerOptions {
  /** A call slower than this counts as a failure and is answered STORE_UNAVAILABLE; default {@link DEFAULT_STORE_CALL_TIMEOUT_MS}. */
  readonly callTimeoutMs?: number;
  /** Failure percentage over the rolling window that opens the breaker; default 50. */
  readonly errorThresholdPercentage?: number;
  /**
   * Calls in the window before the breaker may open; default 3. Keep it at or
   * below window ÷ call timeout, or a caller whose calls all time out one
   * after another can never fill the window.
   */
  readonly volumeThreshold?: number;
  /**
   * The rolling window the failure percentage is measured over; default {@link DEFAULT_STORE_BREAKER_WINDOW_MS}.
   * Short, so a freeze under load is not outvoted by the successes before it.
   */
  readonly windowMs?: number;
  /** How long the breaker stays open before a trial call; default {@link DEFAULT_STORE_BREAKER_RESET_MS}. */
  readonly resetTimeoutMs?: number;
  /** Observes state changes (metrics, logs). */
  readonly onStateChange?: (state: 'open' | 'halfOpen' | 'closed') => void;
}

type Call = () => Promise<unknown>;

/** Wraps an Appender and an EventReader of the same database behind one breaker. */
export class StoreBreaker {
  private readonly breaker: CircuitBreaker<[Call], unknown>;
  readonly appender: Appender;
  readonly reader: EventReader;

  constructor(appender: Appender, reader: EventReader, options: StoreBreakerOptions = {}) {
    this.breaker = new CircuitBreaker((call: Call) => call(), {
      timeout: options.callTimeoutMs ?? DEFAULT_STORE_CALL_TIMEOUT_MS,
      errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
      volumeThreshold: options.volumeThreshold ?? 3,
      resetTimeout: options.resetTimeoutMs ?? DEFAULT_STORE_BREAKER_RESET_MS,
      rollingCountTimeout: options.windowMs ?? DEFAULT_STORE_BREAKER_WINDOW_MS,
      rollingCountBuckets: 10,
      errorFilter: (err: unknown) => isExpectedOutcome(err),
    });
    const notify = options.onStateChange;
    if (notify) {
      this.breaker.on('open', () => notify('open'));
      this.breaker.on('halfOpen', () => notify('halfOpen'));
      this.breaker.on('close', () => notify('closed'));
    }
    const guard = <T>(call: () => Promise<T>) => this.fire(call);
    this.appender = {
      append: (entry: AppendEntry) => guard<AppendResult>(() => appender.append(entry)),
      close: () => appender.close(),
    };
    this.reader = {
      readStream: (streamId: string, fromVersion?: number, toVersion?: number) => guard<StoredEvent[]>(() => reader.readStream(streamId, fromVersion, toVersion)),
      findCommands: (keys) => guard<CommandRecord[]>(() => reader.findCommands(keys)),
      streamTenant: (streamId) => guard<string | undefined>(() => reader.streamTenant(streamId)),
      ...(reader.streamVersions && {
        streamVersions: (ids: readonly string[]) => guard<Map<string, number>>(() => reader.streamVersions!(ids)),
      }),
      close: () => reader.close(),
    };
  }

  get state(): 'open' | 'halfOpen' | 'closed' {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'halfOpen' : 'closed';
  }

  /**
   * `store` with its reads behind this breaker: a load is on the command's
   * critical path like `readStream`. Its writes are not guarded, since a
   * failed snapshot write is only logged and must not open the breaker.
   */
  guardSnapshots(store: SnapshotStore): SnapshotStore {
    return {
      load: (streamId, request) => this.fire(() => store.load(streamId, request)),
      save: (snapshot) => store.save(snapshot),
      close: () => store.close(),
    };
  }

  /** Stops the breaker's timers. */
  shutdown(): void {
    this.breaker.shutdown();
  }

  private async fire<T>(call: () => Promise<T>): Promise<T> {
    try {
      return (await this.breaker.fire(call)) as T;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EOPENBREAKER') throw new StoreUnavailableError('the event store is unavailable (circuit open)');
      if (code === 'ETIMEDOUT') throw new StoreUnavailableError('the event store did not answer in time');
      throw err;
    }
  }
}

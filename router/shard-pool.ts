/**
 * The router's connections to the shards: one long-lived gRPC channel and one
 * circuit breaker per shard on the ring, kept in step with the ring.
 */
import * as grpc from '@grpc/grpc-js';
import CircuitBreaker from 'opossum';
import { STATUS_DETAILS_KEY } from '../src/grpc/status.js';
import type { Logger } from '../src/observability/logger.js';
import type { RingShard } from '../src/ring/index.js';
import type { BreakerSettings } from './config.js';
import { BREAKER_STATE, type RouterMetrics } from './metrics.js';

/** One shard as the router sees it. */
export interface ShardTarget {
  readonly id: string;
  readonly address: string;
  /** The shard's one channel; every call to it is multiplexed over this. */
  readonly client: grpc.Client;
  /**
   * Runs `call` through the shard's breaker: while it is open, rejects at once
   * with an error whose `code` is `'EOPENBREAKER'`. The breaker opens when
   * transport failures (see `isTransportFailure`; never domain errors) pass
   * the threshold in the window, or at once when the channel fails to connect
   * (TRANSIENT_FAILURE); it closes when the channel is READY again or a
   * half-open trial succeeds.
   */
  fire<T>(call: () => Promise<T>): Promise<T>;
  /** True when calls to the shard are expected to work: its channel is READY and its breaker not open. */
  reachable(): boolean;
  /** True while the breaker is open (calls should fail fast without trying). */
  breakerOpen(): boolean;
}

export interface ShardPoolOptions {
  readonly breaker: BreakerSettings;
  /** Longest wait between reconnection attempts. */
  readonly reconnectMaxMs: number;
  /** How the router reaches shards: mutual TLS (`channelCredentials` of `src/grpc/tls.ts`), or plaintext in insecure mode. */
  readonly credentials: grpc.ChannelCredentials;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  /** Called whenever a shard's reachability may have changed (health). */
  readonly onChange: () => void;
}

/**
 * True when a failed call says the shard could not be reached, rather than
 * that the shard answered with an error:
 * - UNAVAILABLE without the `grpc-status-details-bin` trailer a shard puts on
 *   every error it raises (connection refused or dropped, shard draining);
 * - DEADLINE_EXCEEDED while the channel was not connected (the time went on
 *   connecting, not on the shard's work);
 * - anything that is not a gRPC status at all (the channel was closed).
 * Domain errors, version conflicts, WRONG_SHARD, a shard's own
 * STORE_UNAVAILABLE and caller cancellations are answers: they never count.
 */
export function isTransportFailure(err: unknown, channelState: grpc.connectivityState): boolean {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== 'number') return true;
  if (e.code === grpc.status.UNAVAILABLE) return (e.metadata?.get(STATUS_DETAILS_KEY).length ?? 0) === 0;
  if (e.code === grpc.status.DEADLINE_EXCEEDED) return channelState !== grpc.connectivityState.READY;
  return false;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // The shard enforces the request limit; the caller's stub enforces its own reply limit.
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // Find a dead peer (a vanished pod whose packets go nowhere) within ~15 s even when idle.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Long-lived: never drop the connection for being idle (the watcher reconnects anyway).
  'grpc.client_idle_timeout_ms': 24 * 3600 * 1000,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.enable_channelz': 0,
};

class Target implements ShardTarget {
  readonly client: grpc.Client;
  readonly #breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  #state: grpc.connectivityState = grpc.connectivityState.IDLE;
  #closed = false;

  constructor(
    readonly id: string,
    readonly address: string,
    private readonly options: ShardPoolOptions,
  ) {
    this.client = new grpc.Client(address, options.credentials, {
      ...CHANNEL_OPTIONS,
      'grpc.max_reconnect_backoff_ms': options.reconnectMaxMs,
    });
    const b = options.breaker;
    this.#breaker = new CircuitBreaker((run: () => Promise<unknown>) => run(), {
      // The caller's deadline bounds every call; a breaker timeout would cut long streams short.
      timeout: false,
      errorThresholdPercentage: b.errorThresholdPercent,
      volumeThreshold: b.volumeThreshold,
      rollingCountTimeout: b.windowMs,
      resetTimeout: b.resetMs,
      errorFilter: (err: unknown) => !isTransportFailure(err, this.#state),
    });
    const { metrics, logger } = options;
    const report = (state: keyof typeof BREAKER_STATE) => () => {
      if (this.#closed) return;
      metrics.breakerState.set({ shard: id }, BREAKER_STATE[state]);
      const log = state === 'open' ? logger.warn.bind(logger) : logger.info.bind(logger);
      log({ shard: id, address, breaker: state }, `breaker ${state}`);
      options.onChange();
    };
    this.#breaker.on('open', report('open'));
    this.#breaker.on('halfOpen', report('halfOpen'));
    this.#breaker.on('close', report('closed'));
    metrics.breakerState.set({ shard: id }, BREAKER_STATE.closed);
    this.#watch();
  }

  fire<T>(call: () => Promise<T>): Promise<T> {
    return this.#breaker.fire(call) as Promise<T>;
  }

  reachable(): boolean {
    return !this.#closed && this.#state === grpc.connectivityState.READY && !this.#breaker.opened;
  }

  breakerOpen(): boolean {
    return this.#closed || this.#breaker.opened;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#breaker.shutdown();
    this.client.close();
    this.options.metrics.breakerState.remove({ shard: this.id });
    this.options.metrics.channelReady.remove({ shard: this.id });
  }

  /** Follows the channel's state, and keeps it connected: an IDLE channel is asked to connect. */
  #watch(): void {
    if (this.#closed) return;
    const channel = this.client.getChannel();
    const state = channel.getConnectivityState(true);
    if (state !== this.#state) {
      this.#state = state;
      this.options.metrics.channelReady.set({ shard: this.id }, state === grpc.connectivityState.READY ? 1 : 0);
      this.options.logger.debug({ shard: this.id, address: this.address, state: grpc.connectivityState[state] }, 'shard channel state');
      // The channel knows before the call statistics do: a shard that just died may have
      // enough recent successes in the window to keep a rate-based breaker closed for seconds.
      // TRANSIENT_FAILURE (a connect attempt failed) opens it now; a fresh connection (READY)
      // closes it, letting every call through rather than one half-open trial at a time.
      if (state === grpc.connectivityState.TRANSIENT_FAILURE && !this.#breaker.opened) this.#breaker.open();
      if (state === grpc.connectivityState.READY && !this.#breaker.closed) this.#breaker.close();
      this.options.onChange();
    }
    try {
      channel.watchConnectivityState(state, Infinity, () => this.#watch());
    } catch {
      // The channel was shut down (close()): nothing left to watch.
    }
  }
}

/** The shards of the current ring, by id. */
export class ShardPool {
  readonly #targets = new Map<string, Target>();

  constructor(private readonly options: ShardPoolOptions) {}

  /**
   * Makes the pool match `shards`: a shard that kept its address keeps its
   * channel and breaker; a new or moved one gets fresh ones; a shard that left
   * the ring is closed (its calls in flight finish).
   */
  sync(shards: readonly RingShard[]): void {
    const wanted = new Map(shards.map((s) => [s.id, s.address]));
    for (const [id, target] of this.#targets) {
      if (wanted.get(id) === target.address) continue;
      target.close();
      this.#targets.delete(id);
    }
    for (const [id, address] of wanted) {
      if (!this.#targets.has(id)) this.#targets.set(id, new Target(id, address, this.options));
    }
    this.options.onChange();
  }

  get(id: string): ShardTarget | undefined {
    return this.#targets.get(id);
  }

  /** True when at least one shard is reachable. */
  anyReachable(): boolean {
    for (const t of this.#targets.values()) if (t.reachable()) return true;
    return false;
  }

  close(): void {
    for (const t of this.#targets.values()) t.close();
    this.#targets.clear();
  }
}

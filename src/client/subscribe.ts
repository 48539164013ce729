/**
 * `subscribe()`: follow what the cluster commits, as an async iterator of
 * events that survives broken connections.
 *
 * ```ts
 * const sub = subscribe('127.0.0.1:50051', { from: '', aggregateTypes: ['order-header'] });
 * for await (const event of sub) {
 *   apply(event);
 *   save(sub.checkpoint); // resume here next time: subscribe(…, { from: saved })
 * }
 * ```
 *
 * When the call breaks (router restarted, network, server shutdown) the
 * subscription opens a new one from the last checkpoint it received — every
 * event carries one, and the server also sends them between events — after
 * a capped, jittered backoff. Events received but not yet taken stay queued,
 * so the caller sees every event once, with no gap and no duplicate: the
 * server resumes exactly after a checkpoint. A refusal that retrying cannot
 * fix (bad filter or token, credentials, no such service) ends the iteration
 * with `SubscriptionRefusedError`.
 */
import * as grpc from '@grpc/grpc-js';
import { loadApi } from '../grpc/proto.js';
import { credentialsOf, type TlsOptions } from './credentials.js';
import type { RpcStatus } from '../grpc/status.js';
import type { SubscriptionServiceClient } from '../generated/shardwrite/v1/SubscriptionService.js';
import type { SubscribeResponse__Output } from '../generated/shardwrite/v1/SubscribeResponse.js';
import { isRetryable, toReceivedEvent, type ReceivedEvent } from './events.js';
import { ReconnectExhaustedError, SubscriptionRefusedError, pause, reconnectDelay, statusFromObject, type ReconnectOptions } from './reconnect.js';

/**
 * Events received and not yet taken by the caller before the client stops
 * reading from the server (gRPC flow control then holds the server back).
 * @default 1024
 */
export const SUBSCRIBE_BUFFER = 1024;

export interface SubscribeOptions {
  /**
   * `''` = the beginning (the default), `'end'` = only what commits from now
   * on, else a checkpoint token. With `'end'`, a call that breaks before the
   * first checkpoint arrived is opened again from `'end'`: what committed in
   * between is not delivered (there is no position to resume from yet).
   */
  readonly from?: string;
  /** Only these aggregate types; empty or unset = all. */
  readonly aggregateTypes?: readonly string[];
  /** Only these event types; empty or unset = all. */
  readonly eventTypes?: readonly string[];
  /** Aborting it ends the iteration (as `close()` does). */
  readonly signal?: AbortSignal;
  /**
   * Told, in order with the events the caller takes, of checkpoints, the
   * catch-up reaching the live tail, falling behind and reconnects.
   */
  readonly onProgress?: (progress: SubscriptionProgress) => void;
  /** Events held before reading pauses; default {@link SUBSCRIBE_BUFFER}. */
  readonly bufferSize?: number;
  readonly reconnect?: ReconnectOptions;
  /** Metadata sent with every call (e.g. `authorization`). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Explicit channel credentials (win over `tls`). */
  readonly credentials?: grpc.ChannelCredentials;
  /** TLS: the CA file to trust, and a client certificate for mutual TLS; unset (and no `credentials`) = plaintext. */
  readonly tls?: TlsOptions;
}

export type SubscriptionProgress =
  /** Everything up to here was delivered (or filtered out): resume from `checkpoint`. */
  | { readonly kind: 'checkpoint'; readonly checkpoint: string }
  /** The catch-up reached the live tail (again, after a reconnect or falling behind). */
  | { readonly kind: 'caught-up' }
  /** Too slow for the live tail: the server reads from the store again and catches up by itself. */
  | { readonly kind: 'fell-behind' }
  /** The call broke; a new one opens from `from` after `delayMs`. */
  | { readonly kind: 'reconnecting'; readonly attempt: number; readonly delayMs: number; readonly status: RpcStatus; readonly from: string };

export interface Subscription extends AsyncIterable<ReceivedEvent> {
  /**
   * The token right after the last event (or checkpoint) the caller has
   * taken: store it with what the events changed, and subscribe from it to
   * resume exactly there. Before anything is taken, the `from` given.
   */
  readonly checkpoint: string;
  /** Whether the catch-up reached the live tail (false again after `fell-behind` or a reconnect). */
  readonly caughtUp: boolean;
  /** Reconnects so far. */
  readonly reconnects: number;
  /** Cancels the call; the iteration ends at once (events still queued are dropped: resume from `checkpoint`). */
  close(): void;
}

type Item = { readonly kind: 'event'; readonly event: ReceivedEvent } | { readonly kind: 'progress'; readonly progress: SubscriptionProgress } | { readonly kind: 'failed'; readonly error: Error };

/** Events the client asks for per response (what is ready at once; nothing waits for a batch to fill). @default 256 */
export const SUBSCRIBE_MAX_BATCH = 256;

/** Subscribes through the router (or one shard) at `address`; see the module comment. */
export function subscribe(address: string, options: SubscribeOptions = {}): Subscription {
  const api = loadApi();
  const stub: SubscriptionServiceClient = new api.shardwrite.v1.SubscriptionService(address, credentialsOf(options));
  const bufferSize = Math.max(1, options.bufferSize ?? SUBSCRIBE_BUFFER);
  const stop = new AbortController();
  const queue: Item[] = [];
  let wake: (() => void) | undefined;
  let call: grpc.ClientReadableStream<SubscribeResponse__Output> | undefined;
  /** The last checkpoint received from the server: where a new call resumes. */
  let received = options.from ?? '';
  /** The last checkpoint the caller has taken. */
  let taken = received;
  let caughtUp = false;
  let attempt = 0;
  let reconnects = 0;
  let closed = false;

  const push = (item: Item) => {
    queue.push(item);
    if (call && queue.length >= bufferSize) call.pause();
    wake?.();
  };

  const open = () => {
    if (closed) return;
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
    const c = stub.subscribe(
      {
        from: received,
        aggregateTypes: [...(options.aggregateTypes ?? [])],
        eventTypes: [...(options.eventTypes ?? [])],
        maxBatch: SUBSCRIBE_MAX_BATCH,
      },
      md,
    );
    call = c;
    // Data a finished call still emits is not counted: the next call resumes at `received`, which only moves with data handled here.
    let live = true;
    c.on('data', (m: SubscribeResponse__Output) => {
      if (!live) return;
      attempt = 0;
      const events = m.event ? [m.event] : (m.events?.events ?? []);
      if (events.length > 0) {
        for (const e of events) {
          let event: ReceivedEvent;
          try {
            event = toReceivedEvent(e);
          } catch (err) {
            live = false;
            c.cancel();
            push({ kind: 'failed', error: err as Error });
            return;
          }
          received = event.checkpoint;
          push({ kind: 'event', event });
        }
      } else if (m.kind === 'checkpoint' && m.checkpoint !== undefined) {
        received = m.checkpoint;
        push({ kind: 'progress', progress: { kind: 'checkpoint', checkpoint: m.checkpoint } });
      } else if (m.caughtUp) {
        push({ kind: 'progress', progress: { kind: 'caught-up' } });
      } else if (m.fellBehind) {
        push({ kind: 'progress', progress: { kind: 'fell-behind' } });
      }
    });
    // 'status' comes once per call, also after an error; errors are handled there.
    c.on('error', () => {});
    c.on('status', (s: grpc.StatusObject) => {
      live = false;
      if (call === c) call = undefined;
      if (closed) return;
      // A server that ends the call normally is shutting down: follow it elsewhere, like a broken call.
      const status: RpcStatus = s.code === grpc.status.OK ? { code: grpc.status.UNAVAILABLE, message: 'the server ended the subscription' } : statusFromObject(s);
      if (!isRetryable(status.code)) {
        push({ kind: 'failed', error: new SubscriptionRefusedError(status) });
        return;
      }
      if (options.reconnect?.maxAttempts !== undefined && attempt >= options.reconnect.maxAttempts) {
        push({ kind: 'failed', error: new ReconnectExhaustedError(attempt, status) });
        return;
      }
      const delayMs = reconnectDelay(attempt, options.reconnect);
      attempt++;
      reconnects++;
      push({ kind: 'progress', progress: { kind: 'reconnecting', attempt, delayMs, status, from: received } });
      void pause(delayMs, stop.signal).then(open);
    });
  };

  const close = () => {
    if (closed) return;
    closed = true;
    stop.abort();
    call?.cancel();
    call = undefined;
    stub.close();
    wake?.();
  };
  options.signal?.addEventListener('abort', close, { once: true });
  if (options.signal?.aborted) close();
  open();

  const next = async (): Promise<IteratorResult<ReceivedEvent>> => {
    for (;;) {
      if (closed) return { done: true, value: undefined };
      const item = queue.shift();
      if (item === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      if (call && queue.length <= bufferSize / 2) call.resume();
      switch (item.kind) {
        case 'event':
          taken = item.event.checkpoint;
          return { done: false, value: item.event };
        case 'progress':
          if (item.progress.kind === 'checkpoint') taken = item.progress.checkpoint;
          else if (item.progress.kind === 'caught-up') caughtUp = true;
          else caughtUp = false; // fell behind, or reconnecting: a new catch-up follows
          options.onProgress?.(item.progress);
          continue;
        case 'failed':
          close();
          throw item.error;
      }
    }
  };

  return {
    get checkpoint() {
      return taken;
    },
    get caughtUp() {
      return caughtUp;
    },
    get reconnects() {
      return reconnects;
    },
    close,
    [Symbol.asyncIterator]() {
      return {
        next,
        return() {
          close();
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}

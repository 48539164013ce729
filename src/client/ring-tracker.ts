/**
 * The ring as a client knows it: watched from a router (`RingService.WatchRing`,
 * resumed after a broken call), and fetched on demand when a shard reports a
 * newer epoch (`GetRing` with `min_epoch`). Only a ring hashed the way this
 * client computes owners (`RING_HASHING`, equal weights) is used; any other
 * leaves the client without a ring, which sends everything through the router.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Ring__Output } from '../generated/shardwrite/v1/Ring.js';
import type { RingServiceClient } from '../generated/shardwrite/v1/RingService.js';
import { validateRingDocument } from '../ring/document.js';
import { RING_HASHING, RingView, SHARD_WEIGHT } from '../ring/view.js';
import { pause, reconnectDelay } from './reconnect.js';

export class RingTracker {
  readonly #stub: RingServiceClient;
  readonly #metadata: () => grpc.Metadata;
  readonly #onChange: (view: RingView | undefined) => void;
  readonly #closing = new AbortController();
  readonly #fetches = new Map<number, Promise<void>>();
  #view: RingView | undefined;
  /** The newest epoch seen, also of a ring this client cannot use. */
  #epoch = 0;
  #watch: grpc.ClientReadableStream<Ring__Output> | undefined;

  /** `onChange` is called with every newer view, and with `undefined` when a newer ring cannot be used. */
  constructor(stub: RingServiceClient, metadata: () => grpc.Metadata, onChange: (view: RingView | undefined) => void) {
    this.#stub = stub;
    this.#metadata = metadata;
    this.#onChange = onChange;
  }

  /** The ring to route by; `undefined` before the first one arrives or when the newest cannot be used. */
  get view(): RingView | undefined {
    return this.#view;
  }

  /** The newest epoch seen (0 = none yet). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Starts watching; the watch resumes after a failure (backoff with full jitter) until `close()`. */
  start(): void {
    void this.#watchLoop();
  }

  /**
   * Resolves once a ring of `epoch` or newer is held, or after about
   * `timeoutMs` (the router's GetRing waits for it); never rejects.
   * Concurrent calls for one epoch share one request.
   */
  atLeast(epoch: number, timeoutMs: number): Promise<void> {
    if (this.#epoch >= epoch || this.#closing.signal.aborted) return Promise.resolve();
    const running = this.#fetches.get(epoch);
    if (running) return running;
    const fetch = new Promise<void>((resolve) => {
      this.#stub.getRing({ minEpoch: String(epoch) }, this.#metadata(), { deadline: Date.now() + timeoutMs }, (err, ring) => {
        if (!err && ring) this.#accept(ring);
        resolve();
      });
    }).finally(() => this.#fetches.delete(epoch));
    this.#fetches.set(epoch, fetch);
    return fetch;
  }

  close(): void {
    this.#closing.abort();
    this.#watch?.cancel();
  }

  async #watchLoop(): Promise<void> {
    for (let attempt = 0; !this.#closing.signal.aborted;) {
      const delivered = await this.#watchOnce();
      attempt = delivered ? 0 : attempt + 1;
      await pause(reconnectDelay(attempt), this.#closing.signal);
    }
  }

  /** One WatchRing call, until it ends; resolves whether it delivered a ring. */
  #watchOnce(): Promise<boolean> {
    return new Promise((resolve) => {
      let delivered = false;
      const call = this.#stub.watchRing({}, this.#metadata());
      this.#watch = call;
      call.on('data', (ring: Ring__Output) => {
        delivered = true;
        this.#accept(ring);
      });
      // Its end is reported by 'status' below; an 'error' without a listener would throw.
      call.on('error', () => {});
      call.on('status', () => resolve(delivered));
    });
  }

  #accept(ring: Ring__Output): void {
    const epoch = Number(ring.epoch);
    if (!Number.isSafeInteger(epoch) || epoch <= this.#epoch) return;
    let view: RingView | undefined;
    if (ring.hashing === RING_HASHING && ring.shards.every((s) => s.weight === SHARD_WEIGHT)) {
      try {
        view = new RingView(validateRingDocument({ epoch, shards: ring.shards.map(({ id, address }) => ({ id, address })) }));
      } catch {
        // Not a ring this client can route by: it routes through the router instead.
      }
    }
    this.#epoch = epoch;
    this.#view = view;
    this.#onChange(view);
  }
}

/**
 * Keeps a process's copy of the ring current. Used by routers and shards
 * alike: it reads the newest ring at start, is told of new epochs by
 * LISTEN/NOTIFY, polls as a fallback (a lost notification, a pooler that
 * cannot LISTEN), and re-reads on demand when a peer reports a newer epoch.
 */
import type { RingDocument } from './document.js';
import type { RingStore, RingSubscription } from './store.js';
import { RingView } from './view.js';

/** The subset of a pino logger the watcher uses. */
export interface RingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RingWatcherOptions {
  /** How often to re-read the ring regardless of notifications; default 2000 ms; 0 = never. */
  readonly pollMs?: number;
  /** Subscribe with LISTEN/NOTIFY; default true. Off for poolers that cannot LISTEN (PgBouncer in transaction mode). */
  readonly notify?: boolean;
  /** Shortest gap between two reads started by `nudge()`; default 200 ms. */
  readonly nudgeIntervalMs?: number;
  readonly logger?: RingLogger;
}

/** Called with the new view each time the watcher moves to a newer epoch. */
export type RingListener = (view: RingView, previous: RingView | undefined) => void;

/**
 * The latest ring this process knows. The view only ever moves forward: a
 * read that returns an older or equal epoch than the one held is ignored, so
 * a slow read can never take a process back to a superseded ring.
 *
 * It also knows the rebalance in progress, if any (`pending`): the ring a
 * move is heading for, read with every ring read and announced on the same
 * notification channel.
 */
export class RingWatcher {
  readonly #store: RingStore;
  readonly #pollMs: number;
  readonly #notify: boolean;
  readonly #nudgeIntervalMs: number;
  readonly #logger: RingLogger | undefined;
  readonly #listeners = new Set<RingListener>();
  #view: RingView | undefined;
  #pending: RingView | undefined;
  #reading: Promise<void> | undefined;
  #lastNudge = 0;
  #subscription: RingSubscription | undefined;
  #subscribing = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: RingStore, options: RingWatcherOptions = {}) {
    this.#store = store;
    this.#pollMs = options.pollMs ?? 2000;
    this.#notify = options.notify ?? true;
    this.#nudgeIntervalMs = options.nudgeIntervalMs ?? 200;
    this.#logger = options.logger;
  }

  /** The newest ring seen, or `undefined` while the ring database has none. */
  get view(): RingView | undefined {
    return this.#view;
  }

  /** The epoch of `view`; 0 while there is no ring. */
  get epoch(): number {
    return this.#view?.epoch ?? 0;
  }

  /**
   * The ring a rebalance in progress is moving to, while it is newer than
   * `view`; `undefined` when no move is under way or its ring is published.
   */
  get pending(): RingView | undefined {
    const pending = this.#pending;
    return pending !== undefined && pending.epoch > this.epoch ? pending : undefined;
  }

  /**
   * Resolves `true` as soon as this process holds epoch `epoch` or newer, or
   * `false` after `timeoutMs`. Nudges re-reads while it waits, so a lost
   * notification costs at most one nudge interval.
   */
  waitForEpoch(epoch: number, timeoutMs: number): Promise<boolean> {
    if (this.epoch >= epoch) return Promise.resolve(true);
    if (timeoutMs <= 0 || this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (reached: boolean) => {
        clearTimeout(timer);
        clearInterval(poll);
        off();
        resolve(reached);
      };
      const off = this.onChange((view) => {
        if (view.epoch >= epoch) finish(true);
      });
      const timer = setTimeout(() => finish(this.epoch >= epoch), timeoutMs);
      const poll = setInterval(() => this.nudge(), this.#nudgeIntervalMs);
      this.nudge();
    });
  }

  /**
   * Subscribes to notifications (before the first read, so no change can fall
   * between the two), reads the current ring and starts polling.
   *
   * @throws the ring database's error when the first read fails.
   */
  async start(): Promise<RingView | undefined> {
    if (this.#notify) await this.#subscribe();
    await this.#read();
    if (this.#pollMs > 0) {
      this.#timer = setInterval(() => {
        if (this.#notify && !this.#subscription) void this.#subscribe();
        void this.refresh();
      }, this.#pollMs);
      this.#timer.unref();
    }
    return this.#view;
  }

  /** Registers `listener` for every move to a newer epoch; returns the unsubscribe function. */
  onChange(listener: RingListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Re-reads the ring and resolves with the newest view. With `minEpoch`, a
   * view already at or past it is returned at once without touching the
   * database, which keeps a burst of WRONG_SHARD replies for one epoch down to
   * a single read. Concurrent calls share one read. Never rejects: a failed
   * read is logged and the current view returned.
   */
  async refresh(minEpoch = 0): Promise<RingView | undefined> {
    if (minEpoch > 0 && this.epoch >= minEpoch) return this.#view;
    const joined = this.#reading !== undefined;
    await this.#readShared();
    // A read that began before the newer epoch was committed may have missed it: read once more.
    if (joined && minEpoch > 0 && this.epoch < minEpoch) await this.#readShared();
    return this.#view;
  }

  /**
   * Asks for a re-read soon, at most once per `nudgeIntervalMs`, without
   * waiting: for hints (a peer refused us, a shard was unreachable) that the
   * ring may have moved on.
   */
  nudge(): void {
    const now = Date.now();
    if (this.#closed || this.#reading || now - this.#lastNudge < this.#nudgeIntervalMs) return;
    this.#lastNudge = now;
    void this.refresh();
  }

  /** Stops polling and listening. The last view stays readable. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const sub = this.#subscription;
    this.#subscription = undefined;
    await sub?.close();
  }

  #readShared(): Promise<void> {
    this.#reading ??= this.#read()
      .catch((err: unknown) => this.#logger?.warn({ err }, 'cannot read the ring; keeping the one held'))
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  async #read(): Promise<void> {
    const [doc, pending] = await Promise.all([this.#store.current(), this.#store.pendingMove()]);
    if (!pending) this.#pending = undefined;
    else if (pending.epoch !== this.#pending?.epoch || !sameShards(pending, this.#pending.document)) {
      this.#pending = new RingView(pending);
      this.#logger?.info({ targetEpoch: pending.epoch, shards: pending.shards }, 'a ring move is under way');
    }
    if (!doc || doc.epoch <= this.epoch) return;
    const previous = this.#view;
    const view = new RingView(doc);
    this.#view = view;
    this.#logger?.info({ epoch: view.epoch, shards: view.shards, previousEpoch: previous?.epoch }, 'ring epoch changed');
    for (const listener of this.#listeners) {
      try {
        listener(view, previous);
      } catch (err) {
        this.#logger?.warn({ err }, 'ring listener failed');
      }
    }
  }

  async #subscribe(): Promise<void> {
    if (this.#subscribing || this.#closed) return;
    this.#subscribing = true;
    try {
      const sub = await this.#store.listen(
        (epoch) => void this.refresh(epoch),
        (err) => {
          this.#subscription = undefined;
          if (this.#closed) return;
          this.#logger?.warn({ err }, 'ring notifications lost; polling until they are back');
          // Something may have been published while we were not listening.
          void this.refresh();
        },
      );
      if (this.#closed) await sub.close();
      else this.#subscription = sub;
    } catch (err) {
      this.#logger?.warn({ err }, 'cannot listen for ring changes; polling');
    } finally {
      this.#subscribing = false;
    }
  }
}

function sameShards(a: RingDocument, b: RingDocument): boolean {
  return a.shards.length === b.shards.length && a.shards.every((s, i) => s.id === b.shards[i]?.id && s.address === b.shards[i]?.address);
}

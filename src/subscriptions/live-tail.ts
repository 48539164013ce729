/**
 * The live end of one shard's feed, shared by every subscriber of the shard:
 * one reader polls the store for what became visible (woken by the shard's
 * own writer after each commit, and by a short timer for what other
 * processes write), and keeps the newest events in a buffer bounded by
 * count and bytes. A subscriber that is live reads from the buffer; one that
 * falls behind its start reads from the store again. So the number of
 * subscribers never multiplies the database's work at the tail, and a slow
 * one costs no memory.
 */
import type { Logger } from '../observability/logger.js';
import type { FeedRow, PgFeedReader } from '../store/pg-feed-reader.js';
import { comparePositions, type ShardPosition } from './position.js';

/** @default 20,000 events */
export const DEFAULT_TAIL_MAX_EVENTS = 20_000;
/** @default 32 MiB */
export const DEFAULT_TAIL_MAX_BYTES = 32 * 1024 * 1024;
/** How often the tail looks for what other processes committed (rebalance copies), or what waited on an older transaction. @default 25 ms */
export const DEFAULT_TAIL_POLL_MS = 25;
/** Rows read per poll. */
const POLL_PAGE = 1000;
/**
 * Least time between two polls a commit asks for: commits that come closer
 * together are read by one poll (each poll is a query, and a message to every
 * follower), at the price of at most this much delivery latency; a commit
 * after a quiet spell is read at once. Measured with `npm run bench --
 * subscribe --coalesce N` (64 commands in flight, 2 subscribers): write
 * throughput with subscribers / without 0.70 at 5 ms, 0.77 at 10, 0.80 at 15,
 * 0.77 at 25; live delivery p99 25, 24, 32, 42 ms. @default 15 ms
 */
export const DEFAULT_TAIL_COALESCE_MS = 15;

export interface LiveTailOptions {
  readonly maxEvents?: number;
  readonly maxBytes?: number;
  readonly pollMs?: number;
  readonly coalesceMs?: number;
  readonly logger?: Logger;
}

export class LiveTail {
  readonly #reader: PgFeedReader;
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #pollMs: number;
  readonly #coalesceMs: number;
  #lastPollAt = 0;
  #deferred: NodeJS.Timeout | undefined;
  readonly #logger: Logger | undefined;
  #rows: FeedRow[] = [];
  #first = 0;
  #bytes = 0;
  /** The position right before the oldest buffered row; undefined while not running. */
  #before: ShardPosition | undefined;
  #head: ShardPosition | undefined;
  #attached = 0;
  #polling = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #waiters = new Set<() => void>();
  /** Bumped by every start and stop, so a start that finishes after a stop does nothing. */
  #generation = 0;
  /** What readers made of a read, by their key; dropped whenever rows arrive (see `afterShared`). */
  #made = new Map<string, { readonly at: ShardPosition; readonly max: number; readonly value: { rows: FeedRow[]; made: unknown } }>();

  constructor(reader: PgFeedReader, options: LiveTailOptions = {}) {
    this.#reader = reader;
    this.#maxEvents = options.maxEvents ?? DEFAULT_TAIL_MAX_EVENTS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_TAIL_MAX_BYTES;
    this.#pollMs = options.pollMs ?? DEFAULT_TAIL_POLL_MS;
    this.#coalesceMs = options.coalesceMs ?? DEFAULT_TAIL_COALESCE_MS;
    this.#logger = options.logger;
  }

  /** Starts following (on the first subscriber); call the returned function when done. */
  attach(): () => void {
    this.#attached++;
    if (this.#attached === 1) this.#start();
    let detached = false;
    return () => {
      if (detached) return;
      detached = true;
      if (--this.#attached === 0) this.#stop();
    };
  }

  /** Something committed: look now (coalesced with a poll in flight). */
  notify(): void {
    if (this.#head === undefined || this.#deferred !== undefined) return;
    const wait = this.#lastPollAt + this.#coalesceMs - performance.now();
    if (wait <= 0) this.#poll();
    else {
      this.#deferred = setTimeout(() => {
        this.#deferred = undefined;
        this.#poll();
      }, wait);
    }
  }

  /** Whether a subscriber at `at` can continue from the buffer without a gap. */
  covers(at: ShardPosition): boolean {
    return this.#before !== undefined && comparePositions(at, this.#before) >= 0;
  }

  /** Up to `max` buffered rows after `at`, or 'behind' when the buffer no longer reaches back to it. */
  after(at: ShardPosition, max: number): FeedRow[] | 'behind' {
    if (!this.covers(at)) return 'behind';
    let lo = this.#first;
    let hi = this.#rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.#rows[mid]!.at, at) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return this.#rows.slice(lo, lo + max);
  }

  /**
   * As `after`, with what `make` built from the rows, shared by every reader
   * that asks at the same place with the same `key` before new rows arrive:
   * subscribers with the same filter wake together at the same position, so
   * the second and later ones do no work per row. 'none': nothing after `at` yet.
   */
  afterShared<T>(at: ShardPosition, max: number, key: string, make: (rows: FeedRow[]) => T): { rows: FeedRow[]; made: T } | 'behind' | 'none' {
    const hit = this.#made.get(key);
    if (hit !== undefined && hit.max === max && comparePositions(hit.at, at) === 0) return hit.value as { rows: FeedRow[]; made: T };
    const rows = this.after(at, max);
    if (rows === 'behind') return rows;
    if (rows.length === 0) return 'none';
    const value = { rows, made: make(rows) };
    this.#made.set(key, { at, max, value });
    return value;
  }

  /** Resolves at the next poll that found rows, when `signal` aborts, or after `ms`. */
  wait(signal: AbortSignal, ms = 1000): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.#waiters.add(done);
    });
  }

  #start(): void {
    const generation = ++this.#generation;
    void (async () => {
      for (;;) {
        try {
          const tail = await this.#reader.tail();
          if (generation !== this.#generation) return;
          this.#before = tail;
          this.#head = tail;
          break;
        } catch (err) {
          this.#logger?.warn({ err }, 'live tail cannot read the store yet');
          await new Promise((r) => setTimeout(r, 500));
          if (generation !== this.#generation) return;
        }
      }
      // The timer only covers what no commit announced: a poll a commit asked for meanwhile makes it unnecessary.
      this.#timer = setInterval(
        () => {
          if (performance.now() - this.#lastPollAt >= this.#pollMs) this.#poll();
        },
        Math.max(1, this.#pollMs / 5),
      );
      this.#timer.unref();
      this.#wake();
    })();
  }

  #stop(): void {
    this.#generation++;
    clearTimeout(this.#deferred);
    this.#deferred = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#rows = [];
    this.#first = 0;
    this.#bytes = 0;
    this.#before = undefined;
    this.#head = undefined;
    this.#made.clear();
    this.#wake();
  }

  #poll(): void {
    if (this.#polling) {
      this.#again = true;
      return;
    }
    const head = this.#head;
    if (head === undefined) return;
    this.#polling = true;
    this.#again = false;
    this.#lastPollAt = performance.now();
    this.#reader.page(head, POLL_PAGE).then(
      (rows) => {
        this.#polling = false;
        if (this.#head !== head) return; // stopped (or restarted) meanwhile
        if (rows.length > 0) {
          this.#append(rows);
          this.#wake();
        }
        if (rows.length === POLL_PAGE || this.#again) this.#poll();
      },
      (err: unknown) => {
        this.#polling = false;
        this.#logger?.warn({ err }, 'live tail poll failed');
      },
    );
  }

  #append(rows: FeedRow[]): void {
    this.#made.clear();
    for (const row of rows) {
      this.#rows.push(row);
      this.#bytes += row.bytes;
    }
    this.#head = rows[rows.length - 1]!.at;
    while (this.#rows.length - this.#first > this.#maxEvents || (this.#bytes > this.#maxBytes && this.#rows.length - this.#first > 1)) {
      const gone = this.#rows[this.#first++]!;
      this.#bytes -= gone.bytes;
      this.#before = gone.at;
    }
    if (this.#first > 4096 && this.#first * 2 > this.#rows.length) {
      this.#rows = this.#rows.slice(this.#first);
      this.#first = 0;
    }
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

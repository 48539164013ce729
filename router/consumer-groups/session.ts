/**
 * One member's `Consume` session in the router that serves it: membership,
 * leases, delivery and acknowledgements.
 *
 * Control (every heartbeat, and at once when a member of the same group in
 * this router comes, goes or releases a partition): renew the member and its
 * leases, compute the desired assignment from the live members
 * (`assignment.ts`), start giving up partitions it should no longer hold,
 * release those whose deliveries were all acknowledged (or whose handover
 * wait ran out) with their final checkpoint, and take the leases of desired
 * partitions that are free or expired. The member gets an `Assignment`
 * whenever the set of partitions it holds changes.
 *
 * Delivery: one subscription to the cluster feed per session, over the
 * partitions it holds and is not giving up, from the per-shard earliest of
 * their cursors; an event a partition had already passed is dropped. One
 * subscription rather than one per partition so that catching up reads the
 * store once per member, not once per partition; it is restarted whenever
 * that set of partitions changes, and after a feed failure (from what was
 * delivered, so nothing is sent twice). Pulling stops at `max_unacked`
 * unacknowledged events and while gRPC's send buffer is full, so a slow
 * member holds at most that many events in this router.
 *
 * Checkpoints: acks move each partition's checkpoint in memory
 * (`ledger.ts`); they are written every `flushMs`, and always before a lease
 * is released and when the session ends. A lost lease (this router stalled
 * past its expiry and someone else took the partition) stops the partition's
 * delivery at the next heartbeat, and the owner guard in the store keeps the
 * old holder from writing its checkpoint.
 */
import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { ShardUnavailableError, StoreUnavailableError, ValidationError } from '../../src/errors.js';
import type { ConsumeRequest__Output } from '../../src/generated/shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse } from '../../src/generated/shardwrite/v1/ConsumeResponse.js';
import { toServiceError } from '../../src/grpc/status.js';
import type { Logger } from '../../src/observability/logger.js';
import { partitionOf } from '../../src/subscriptions/partition.js';
import { encodeCheckpoint, type Cursor } from '../../src/subscriptions/position.js';
import { desiredPartitions } from './assignment.js';
import { BEGINNING, cursorOf, earliestOf } from './cursors.js';
import type { ClusterFeeds, ClusterItem, SubscribedEvent } from './feeds.js';
import type { JoinSpec } from './join.js';
import { PartitionLedger, formatAckId, parseAckId } from './ledger.js';
import type { ConsumerGroupSettings } from './settings.js';
import type { GroupSpec, PgGroupStore } from './store.js';

export type ConsumeCall = grpc.ServerDuplexStream<ConsumeRequest__Output, ConsumeResponse>;

export interface SessionDeps {
  readonly store: PgGroupStore;
  readonly feeds: ClusterFeeds;
  readonly settings: ConsumerGroupSettings;
  readonly logger: Logger;
  /** Wakes the other sessions of `group` in this router (a member came or went, or a partition was released). */
  readonly poke: (group: string) => void;
}

/** How a session ended, and so what the member is told. */
type SessionEnd =
  | { readonly kind: 'left' } // the member closed its side: end with OK
  | { readonly kind: 'cancelled' } // the call is gone: nothing to send
  | { readonly kind: 'shutdown' } // the router stops: UNAVAILABLE, join again elsewhere
  | { readonly kind: 'failed'; readonly error: unknown };

/** First and longest wait before resubscribing after a feed failure. @default 100 ms … 5000 ms */
const FEED_RETRY_MS = { first: 100, max: 5000 } as const;

/** Resolves waiters when something they wait on may have changed. */
class Wakeup {
  #waiters: (() => void)[] = [];
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
  wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** A member's session (see the module comment). Built after its `join` was validated and its group ensured. */
export class MemberSession {
  readonly memberId: string;
  readonly #held = new Map<number, PartitionLedger>();
  /** Partitions being given up → since when (ms). */
  readonly #revoking = new Map<number, number>();
  readonly #wakeup = new Wakeup();
  readonly #log: Logger;
  /** The member's credentials: its events are read with them, so it sees only what it may read. */
  readonly #authorization: string | undefined;
  #seq = 0;
  #unacked = 0;
  #writeBlocked = false;
  #generation = 0;
  #delivery: { readonly members: string; readonly abort: AbortController } | undefined;
  #sentAssignment: string | undefined;
  #lastHeartbeatOk = Date.now();
  #caughtUp = false;
  #lastReadAtMs: number | undefined;
  /**
   * How far the current subscription has been handled: every event of the
   * delivered partitions up to here was delivered (or dropped as already
   * delivered). A partition whose last delivery is acknowledged may move its
   * checkpoint here.
   */
  #feedCursor: Cursor | undefined;
  /** Control steps and checkpoint writes run one at a time, in order. */
  #serial: Promise<void> = Promise.resolve();
  #stepQueued = false;
  #flushQueued = false;
  #timers: NodeJS.Timeout[] = [];
  #ending: SessionEnd | undefined;
  #started = false;
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;

  constructor(
    private readonly deps: SessionDeps,
    private readonly call: ConsumeCall,
    readonly join: JoinSpec,
    readonly group: GroupSpec,
  ) {
    this.memberId = `${join.member.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 40) || 'member'}-${randomUUID()}`;
    this.#log = deps.logger.child({ group: group.name, member: this.memberId });
    const authorization = call.metadata.get('authorization')[0];
    this.#authorization = typeof authorization === 'string' ? authorization : undefined;
    this.#finished = new Promise((resolve) => (this.#resolveFinished = resolve));
  }

  /** Resolves once the session ended and its partitions were handed back. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** Unacknowledged events held for this member. */
  get unacked(): number {
    return this.#unacked;
  }

  /**
   * Age in seconds of the oldest event this member still has to finish: the
   * oldest unacknowledged one; else, while the subscription is catching up,
   * the last one read (the next is younger, so this slightly overstates);
   * else 0.
   */
  lagSeconds(nowMs: number): number {
    let oldest: number | undefined;
    for (const l of this.#held.values()) {
      const at = l.oldestUnackedAtMs;
      if (at !== undefined && (oldest === undefined || at < oldest)) oldest = at;
    }
    if (oldest === undefined && !this.#caughtUp) oldest = this.#lastReadAtMs;
    return oldest === undefined ? 0 : Math.max(0, (nowMs - oldest) / 1000);
  }

  /** Takes over the call: reads its acks, joins the group and starts the heartbeat. */
  start(): void {
    this.call.on('data', (msg: ConsumeRequest__Output) => this.#onMessage(msg));
    this.call.on('end', () => void this.#finish({ kind: 'left' }));
    this.call.on('cancelled', () => void this.#finish({ kind: 'cancelled' }));
    this.call.on('error', () => void this.#finish({ kind: 'cancelled' }));
    this.call.on('close', () => void this.#finish({ kind: 'cancelled' }));
    this.#timers.push(setInterval(() => this.poke(), this.deps.settings.heartbeatMs));
    this.#timers.push(setInterval(() => this.#queueFlush(), this.deps.settings.flushMs));
    if (this.call.cancelled) void this.#finish({ kind: 'cancelled' });
    else this.poke();
  }

  /** Runs a control step soon (at most one queued at a time). */
  poke(): void {
    if (this.#ending || this.#stepQueued) return;
    this.#stepQueued = true;
    this.#enqueue(async () => {
      this.#stepQueued = false;
      await this.#step();
    });
  }

  /** Ends the session because the router stops: acknowledged checkpoints are written and the leases released. */
  shutdown(): Promise<void> {
    void this.#finish({ kind: 'shutdown' });
    return this.#finished;
  }

  #enqueue(work: () => Promise<void>): void {
    this.#serial = this.#serial.then(work).catch((err: unknown) => this.#log.error({ err }, 'consumer group step failed'));
  }

  #queueFlush(): void {
    if (this.#ending || this.#flushQueued) return;
    this.#flushQueued = true;
    this.#enqueue(async () => {
      this.#flushQueued = false;
      await this.#flush();
    });
  }

  // ---- control ----

  async #step(): Promise<void> {
    if (this.#ending) return;
    const { store, settings } = this.deps;
    const name = this.group.name;
    let heartbeat;
    // The leases were renewed at some moment after this: counting from here errs on the safe side.
    const renewedAfter = Date.now();
    try {
      heartbeat = await store.heartbeat(name, this.memberId, this.join.member, settings.leaseMs);
    } catch (err) {
      this.#heartbeatFailed(err);
      return;
    }
    this.#lastHeartbeatOk = renewedAfter;
    this.#started = true;
    this.#wakeup.wake();
    if (this.#ending) return;
    let changed = false;
    for (const p of [...this.#held.keys()]) {
      if (heartbeat.leased.has(p)) continue;
      this.#log.warn({ partition: p }, 'partition lease lost to another member; its delivery stops');
      this.#drop(p);
      changed = true;
    }
    const desired = new Set(desiredPartitions(heartbeat.members, this.group.partitionCount, this.memberId));
    // Leased in the database but not delivered here: an acquire whose answer was lost. A desired
    // one is simply taken below (the acquire succeeds for its own owner); any other is let go.
    const stray = [...heartbeat.leased].filter((p) => !this.#held.has(p) && !desired.has(p));
    if (stray.length > 0) {
      try {
        await store.abandon(name, this.memberId, stray);
      } catch (err) {
        this.#log.warn({ err }, 'could not give up stray leases; retrying at the next heartbeat');
      }
    }
    const now = Date.now();
    for (const p of this.#held.keys()) if (!desired.has(p) && !this.#revoking.has(p)) this.#revoking.set(p, now);
    for (const p of [...this.#revoking.keys()]) if (desired.has(p)) this.#revoking.delete(p);
    // Stop delivering what is being given up before waiting for its acks.
    this.#syncDelivery();

    const releasing = new Map<number, string>();
    for (const [p, since] of this.#revoking) {
      const ledger = this.#held.get(p)!;
      if (ledger.unacked === 0 || now - since >= settings.handoverMs) releasing.set(p, encode(ledger.acked));
    }
    if (releasing.size > 0) {
      try {
        await store.release(name, this.memberId, releasing);
      } catch (err) {
        this.#log.warn({ err }, 'could not release partitions; retrying at the next heartbeat');
        return;
      }
      for (const p of releasing.keys()) {
        const left = this.#held.get(p)?.unacked ?? 0;
        if (left > 0) this.#log.warn({ partition: p, unacked: left }, 'handover wait over: partition released with unacknowledged events (they go to the next owner again)');
        this.#drop(p);
      }
      changed = true;
      this.deps.poke(name);
    }
    if (this.#ending) return;

    const wanted = [...desired].filter((p) => !this.#held.has(p));
    if (wanted.length > 0) {
      let taken: Map<number, string>;
      try {
        taken = await store.acquire(name, this.memberId, wanted, settings.leaseMs);
      } catch (err) {
        this.#log.warn({ err }, 'could not take partition leases; retrying at the next heartbeat');
        taken = new Map();
      }
      if (this.#ending) {
        // Finishing releases every lease this member holds, these included.
        return;
      }
      for (const [p, checkpoint] of taken) this.#held.set(p, new PartitionLedger(p, cursorOf(checkpoint)));
      if (taken.size > 0) changed = true;
    }
    if (changed || this.#sentAssignment === undefined) this.#sendAssignment();
    this.#syncDelivery();
  }

  #heartbeatFailed(err: unknown): void {
    if (!this.#started) {
      void this.#finish({ kind: 'failed', error: new StoreUnavailableError('the consumer group database is unavailable', { cause: err }) });
      return;
    }
    this.#log.warn({ err }, 'consumer group heartbeat failed');
    // Without heartbeats the leases run out and other members take the
    // partitions: stop delivering well before that, so two members never
    // hold one partition's events at once.
    if (Date.now() - this.#lastHeartbeatOk > (this.deps.settings.leaseMs * 2) / 3 && this.#held.size > 0) {
      this.#log.warn('no heartbeat for two thirds of a lease: pausing delivery until the database answers');
      for (const p of [...this.#held.keys()]) this.#drop(p);
      this.#sendAssignment();
      this.#syncDelivery();
    }
  }

  #drop(p: number): void {
    const ledger = this.#held.get(p);
    if (!ledger) return;
    this.#unacked -= ledger.unacked;
    this.#held.delete(p);
    this.#revoking.delete(p);
    this.#wakeup.wake();
  }

  #sendAssignment(): void {
    const partitions = [...this.#held.keys()].sort((a, b) => a - b);
    const key = partitions.join(',');
    if (key === this.#sentAssignment) return;
    this.#sentAssignment = key;
    this.#log.info({ partitions }, 'assignment');
    this.#write({ assignment: { memberId: this.memberId, partitions, partitionCount: this.group.partitionCount } });
  }

  // ---- delivery ----

  /** (Re)starts the subscription when the partitions to deliver changed. */
  #syncDelivery(): void {
    const members = this.#ending ? [] : [...this.#held.keys()].filter((p) => !this.#revoking.has(p)).sort((a, b) => a - b);
    const key = members.join(',');
    if (this.#delivery && this.#delivery.members === key) return;
    this.#delivery?.abort.abort();
    this.#delivery = undefined;
    const generation = ++this.#generation;
    this.#feedCursor = undefined;
    this.#wakeup.wake();
    if (members.length === 0) return;
    const abort = new AbortController();
    this.#delivery = { members: key, abort };
    this.#caughtUp = false;
    void this.#deliver(generation, members, abort.signal);
  }

  async #deliver(generation: number, members: number[], signal: AbortSignal): Promise<void> {
    let retryMs: number = FEED_RETRY_MS.first;
    while (!signal.aborted) {
      const cursors = members.map((p) => this.#held.get(p)?.delivered ?? BEGINNING);
      const from = earliestOf(cursors);
      try {
        const items = this.deps.feeds.subscribe(
          {
            from: encode(from),
            aggregateTypes: this.group.aggregateTypes,
            eventTypes: this.group.eventTypes,
            partitions: { count: this.group.partitionCount, members },
            ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }),
          },
          signal,
        );
        for await (const item of items) {
          if (signal.aborted || generation !== this.#generation) return;
          await this.#onItem(item, generation, signal);
          retryMs = FEED_RETRY_MS.first;
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ValidationError) {
          void this.#finish({ kind: 'failed', error: err });
          return;
        }
        this.#log.warn({ err }, 'cluster feed failed; subscribing again from what was delivered');
      }
      if (signal.aborted) return;
      await sleep(retryMs, signal);
      retryMs = Math.min(retryMs * 2, FEED_RETRY_MS.max);
    }
  }

  async #onItem(item: ClusterItem, generation: number, signal: AbortSignal): Promise<void> {
    switch (item.kind) {
      case 'event': {
        const event = item.event;
        const p = partitionOf(event.streamId, this.group.partitionCount);
        const ledger = this.#held.get(p);
        const cursor = cursorOf(event.checkpoint);
        if (!ledger || this.#revoking.has(p)) {
          this.#feedCursor = cursor;
          return;
        }
        const position = cursor.get(event.shardId);
        // Read again because the subscription started before this partition's own cursor.
        if (position !== undefined && position !== 'done' && ledger.hasDelivered(event.shardId, position)) {
          this.#feedCursor = cursor;
          return;
        }
        const recordedAtMs = timestampMs(event);
        this.#lastReadAtMs = recordedAtMs;
        while (!signal.aborted && (this.#unacked >= this.join.maxUnacked || this.#writeBlocked || this.#leasesInDoubt())) {
          await this.#wakeup.wait(signal);
        }
        // The partition may have been given up while this waited: its next owner delivers the event.
        if (signal.aborted || generation !== this.#generation || this.#held.get(p) !== ledger || this.#revoking.has(p)) return;
        const seq = ++this.#seq;
        ledger.deliver(seq, cursor, recordedAtMs);
        this.#unacked++;
        this.#feedCursor = cursor;
        this.#write({ event: { event, ackId: formatAckId(p, seq), partition: p } });
        return;
      }
      case 'checkpoint': {
        const cursor = cursorOf(item.checkpoint);
        this.#feedCursor = cursor;
        for (const [p, ledger] of this.#held) if (!this.#revoking.has(p)) ledger.passIdle(cursor);
        return;
      }
      case 'caught_up':
        this.#caughtUp = true;
        return;
      case 'fell_behind':
        this.#caughtUp = false;
        return;
    }
  }

  /**
   * True when the last successful heartbeat is so old that the leases may
   * have run out (this process stalled, or the database is unreachable):
   * nothing is delivered until a heartbeat confirms which leases are still
   * held, so a partition taken over by another member is never delivered by
   * two at once.
   */
  #leasesInDoubt(): boolean {
    const inDoubt = Date.now() - this.#lastHeartbeatOk > (this.deps.settings.leaseMs * 2) / 3;
    if (inDoubt) this.poke();
    return inDoubt;
  }

  #write(message: ConsumeResponse): void {
    if (this.#ending?.kind === 'cancelled') return;
    if (!this.call.write(message) && !this.#writeBlocked) {
      this.#writeBlocked = true;
      this.call.once('drain', () => {
        this.#writeBlocked = false;
        this.#wakeup.wake();
      });
    }
  }

  // ---- acknowledgements ----

  #onMessage(msg: ConsumeRequest__Output): void {
    if (this.#ending) return;
    if (msg.kind !== 'ack' || !msg.ack) {
      void this.#finish({ kind: 'failed', error: new ValidationError([{ field: 'kind', description: 'after join, a member sends only acks' }]) });
      return;
    }
    let handover = false;
    try {
      for (const id of msg.ack.ackIds) {
        const { partition, seq } = parseAckId(id);
        const ledger = this.#held.get(partition);
        // A partition already handed over: its acks came too late to count.
        if (!ledger) continue;
        this.#unacked -= ledger.ack(seq);
        if (ledger.unacked > 0) continue;
        if (this.#revoking.has(partition)) handover = true;
        else if (this.#feedCursor) ledger.passIdle(this.#feedCursor);
      }
    } catch (err) {
      void this.#finish({ kind: 'failed', error: err });
      return;
    }
    this.#wakeup.wake();
    if (handover) this.poke();
  }

  async #flush(): Promise<void> {
    const dirty = new Map<number, Cursor>();
    for (const [p, ledger] of this.#held) {
      const cursor = ledger.takeDirty();
      if (cursor) dirty.set(p, cursor);
    }
    if (dirty.size === 0) return;
    const tokens = new Map([...dirty].map(([p, c]) => [p, encode(c)]));
    try {
      const saved = await this.deps.store.saveCheckpoints(this.group.name, this.memberId, tokens);
      if (saved.size < tokens.size) this.poke();
    } catch (err) {
      this.#log.warn({ err }, 'could not write checkpoints; retrying');
      for (const p of dirty.keys()) this.#held.get(p)?.markDirty();
    }
  }

  // ---- the end ----

  async #finish(end: SessionEnd): Promise<void> {
    if (this.#ending) return;
    this.#ending = end;
    for (const t of this.#timers) clearInterval(t);
    this.#syncDelivery();
    this.#wakeup.wake();
    // After any step or flush in progress, so the final checkpoints are the last ones written.
    await this.#serial;
    const finals = new Map([...this.#held].map(([p, l]) => [p, encode(l.acked)]));
    try {
      if (this.#started) await this.deps.store.leave(this.group.name, this.memberId, finals);
    } catch (err) {
      this.#log.warn({ err }, 'could not hand the partitions back; their leases expire instead');
    }
    for (const p of [...this.#held.keys()]) this.#drop(p);
    this.deps.poke(this.group.name);
    this.#log.info({ end: end.kind }, 'member left');
    switch (end.kind) {
      case 'left':
        this.call.end();
        break;
      case 'shutdown':
        this.call.emit('error', toServiceError(new ShardUnavailableError('the router is shutting down; join again')));
        break;
      case 'failed':
        this.call.emit('error', toServiceError(end.error));
        break;
      case 'cancelled':
        break;
    }
    this.#resolveFinished();
  }
}

function encode(cursor: Cursor): string {
  return cursor.size === 0 ? '' : encodeCheckpoint(cursor);
}

function timestampMs(event: SubscribedEvent): number {
  const at = event.recordedAt;
  return at ? Number(at.seconds) * 1000 + Math.floor(at.nanos / 1e6) : Date.now();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

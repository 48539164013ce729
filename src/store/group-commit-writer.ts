/**
 * The shard's single writer: group commit over one dedicated connection.
 */
import pg from 'pg';
import { ConcurrencyError, DuplicateCommandError, StoreUnavailableError, StreamMovingError, ValidationError, WrongShardError, asError } from '../errors.js';
import {
  APPEND_BATCH_SQL,
  APPEND_SESSION_SETTINGS,
  appendBatchValues,
  entryOutcomes,
  factsByKind,
  type AppendBatchFact,
  type FactsByKind,
  type EntryOutcome,
  type SerializedEntry,
} from './append-batch-sql.js';
import { classifyPgError, errorCode, type PgErrorKind } from './pg-errors.js';
import { toBigInt, toSafeInteger } from './pg-values.js';
import type { AppendEntry, AppendResult, Appender, PendingMove } from './types.js';
import { ROOT_CONTEXT, SpanStatusCode, context, trace, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';

/** The subset of a pino logger the store uses. */
export interface StoreLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GroupCommitWriterOptions {
  /** Connection string of this shard's event store (already migrated). */
  readonly connectionString: string;
  /**
   * The ring epoch this shard holds. Read once per batch; the batch appends
   * nothing when the store's fence is above it (invariant I6).
   */
  readonly epoch: () => number;
  /**
   * The rebalance this shard knows is under way, if any. Read once per batch;
   * once the move has sealed this store, entries whose aggregate moves away
   * are refused with `StreamMovingError`, and a writer that does not know the
   * move has every entry refused that way. Default: never a move.
   */
  readonly pendingMove?: () => PendingMove | undefined;
  /** Most entries in one batch; default {@link DEFAULT_MAX_BATCH_ENTRIES}. */
  readonly maxBatchEntries?: number;
  /**
   * Most bytes (serialized event data and metadata, ids, types) in one batch.
   * An entry larger than this on its own still goes, alone. Default {@link DEFAULT_MAX_BATCH_BYTES}.
   */
  readonly maxBatchBytes?: number;
  /**
   * Server-side `statement_timeout` of the writer session, and the connect
   * timeout. A client-side guard of this plus 5 s catches a hung network.
   * Default {@link DEFAULT_STATEMENT_TIMEOUT_MS}.
   */
  readonly statementTimeoutMs?: number;
  /** `application_name` of the writer session. Default `shardwrite-writer`. */
  readonly applicationName?: string;
  /** Where connection problems and unexpected errors are reported. Default: nowhere. */
  readonly logger?: StoreLogger;
  /** Called with the number of entries of each batch as it is taken (for a histogram). */
  readonly onBatch?: (entries: number) => void;
  /** Called after each statement that committed (subscriptions' live tail reads what it wrote). */
  readonly onCommitted?: () => void;
  /**
   * Traces batches: a batch with traced entries (`AppendEntry.trace`) gets a
   * span, a child of its first traced entry's parent and linked to every
   * command span it serves, with the PostgreSQL spans of its statements
   * under it. Default: no tracing.
   */
  readonly tracer?: Tracer;
}

/** Counters for metrics and benchmarks; all monotonic except `last…`, `pending` and `inFlight`. */
export interface GroupCommitStats {
  /** Batches taken from the queue (each is one statement, or one per entry after a fallback). */
  readonly batches: number;
  /** Entries committed. */
  readonly entries: number;
  /** Events committed. */
  readonly events: number;
  /** Entries rejected, for any reason. */
  readonly rejectedEntries: number;
  /** Batches whose statement failed on data and were retried entry by entry. */
  readonly fallbackBatches: number;
  /** Batches rejected because the store was unavailable. */
  readonly unavailableBatches: number;
  /** Entries in the most recent batch. */
  readonly lastBatchEntries: number;
  /** Entries in the largest batch so far. */
  readonly largestBatchEntries: number;
  /** Entries waiting for a batch. */
  readonly pending: number;
  /** Entries in the batch being written. */
  readonly inFlight: number;
}

/** Most entries in one batch. @default 512 */
export const DEFAULT_MAX_BATCH_ENTRIES = 512;
/** Most bytes in one batch. @default 4194304 (4 MiB) */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** The writer session's statement timeout (and the shard's database statements'). @default 5000 (ms) */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5000;
/** Allowance on top of statement_timeout before the client gives up on a silent server. */
const NETWORK_GRACE_MS = 5000;
const STATEMENT_NAME = 'shardwrite_append_batch';
/** Retry hint of `StreamMovingError`: about how long the end of a move takes. */
const MOVING_RETRY_AFTER_MS = 250;

interface Queued extends SerializedEntry {
  readonly bytes: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit done right (see ARCHITECTURE.md, "The hot path"): there is no
 * timer. When idle, an `append` starts a batch at once (in a microtask, so the
 * entries appended in the same tick go together); while a batch is being
 * written new entries queue, and when it finishes the writer takes everything
 * pending, up to `maxBatchEntries` and `maxBatchBytes`, as the next batch. A
 * batch holds at most one entry per stream; a later entry for the same stream
 * waits for the next batch, in order.
 *
 * Each batch is one statement (one implicit transaction) on one dedicated
 * connection with `synchronous_commit = on`, so:
 * - `append` resolves only after its events are durably committed (I1), all of
 *   them or none (I3), right after `baseVersion` (I2, I7);
 * - each entry gets its own outcome: one entry's conflict, duplicate or bad
 *   data never fails another entry of the batch (I5);
 * - the fence is checked inside the transaction (I6);
 * - positions follow commit order, and within a batch entry and version order
 *   (I9) — as long as this is the only writer of the database.
 *
 * `append` rejects with `ConcurrencyError` (stream not at `baseVersion`;
 * `currentVersion` when known), `DuplicateCommandError`, `WrongShardError`
 * (fence above our epoch — every entry of the batch — or stream moved at an
 * epoch we hold, with that epoch), `StreamMovingError` (a rebalance sealed the
 * stream for a move to a newer epoch than ours: retryable, nothing written;
 * `planUnknown` when the store is sealed for a move we have not heard of),
 * `StoreUnavailableError` (connection refused or lost,
 * timeout, writer closing: when the connection is lost mid-statement the
 * entry may or may not have committed; a retry with the same command id is
 * deduplicated), `ValidationError` (the database refused the entry's data, e.g.
 * a NUL character), or `TypeError`/`RangeError` for a malformed entry (a bug
 * upstream; nothing is written).
 *
 * The connection is opened on the first batch and reopened lazily on the next
 * batch after any connection error.
 */
export class GroupCommitWriter implements Appender {
  readonly #connectionString: string;
  readonly #epoch: () => number;
  readonly #pendingMove: () => PendingMove | undefined;
  readonly #maxBatchEntries: number;
  readonly #maxBatchBytes: number;
  readonly #statementTimeoutMs: number;
  readonly #applicationName: string;
  readonly #logger: StoreLogger | undefined;
  readonly #onBatch: ((entries: number) => void) | undefined;
  readonly #onCommitted: (() => void) | undefined;
  readonly #tracer: Tracer | undefined;

  #queue: Queued[] = [];
  #scheduled = false;
  #busy = false;
  #draining: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  #client: pg.Client | undefined;
  #inFlight = 0;
  readonly #stats = {
    batches: 0,
    entries: 0,
    events: 0,
    rejectedEntries: 0,
    fallbackBatches: 0,
    unavailableBatches: 0,
    lastBatchEntries: 0,
    largestBatchEntries: 0,
  };

  /** @throws RangeError listing every invalid option. */
  constructor(options: GroupCommitWriterOptions) {
    const problems: string[] = [];
    const positiveInt = (name: string, value: number | undefined, fallback: number): number => {
      if (value === undefined) return fallback;
      if (!Number.isSafeInteger(value) || value < 1) problems.push(`${name} must be a positive integer, got ${value}`);
      return value;
    };
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      problems.push('connectionString is required');
    }
    if (typeof options.epoch !== 'function') problems.push('epoch must be a function returning the ring epoch');
    this.#maxBatchEntries = positiveInt('maxBatchEntries', options.maxBatchEntries, DEFAULT_MAX_BATCH_ENTRIES);
    this.#maxBatchBytes = positiveInt('maxBatchBytes', options.maxBatchBytes, DEFAULT_MAX_BATCH_BYTES);
    this.#statementTimeoutMs = positiveInt('statementTimeoutMs', options.statementTimeoutMs, DEFAULT_STATEMENT_TIMEOUT_MS);
    if (problems.length > 0) throw new RangeError(`invalid GroupCommitWriter options: ${problems.join('; ')}`);
    this.#connectionString = options.connectionString;
    this.#epoch = options.epoch;
    this.#pendingMove = options.pendingMove ?? (() => undefined);
    this.#applicationName = options.applicationName ?? 'shardwrite-writer';
    this.#logger = options.logger;
    this.#onBatch = options.onBatch;
    this.#onCommitted = options.onCommitted;
    this.#tracer = options.tracer;
  }

  /** A snapshot of the counters. */
  get stats(): GroupCommitStats {
    return { ...this.#stats, pending: this.#queue.length, inFlight: this.#inFlight };
  }

  /** See the class documentation for what it guarantees and how it rejects. */
  append(entry: AppendEntry): Promise<AppendResult> {
    if (this.#closing !== undefined) {
      return Promise.reject(new StoreUnavailableError('the event store writer is shutting down'));
    }
    let prepared: Pick<Queued, 'data' | 'metadata' | 'bytes'>;
    try {
      prepared = prepareEntry(entry);
    } catch (err) {
      return Promise.reject(asError(err));
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ entry, ...prepared, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Rejects new entries with `StoreUnavailableError`, writes every entry
   * already accepted, then closes the connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#start();
    while (this.#busy) await this.#draining;
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      await client.end().catch((err: unknown) => this.#logger?.warn({ err }, 'closing the writer connection failed'));
    }
  }

  #schedule(): void {
    if (this.#busy || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  #start(): void {
    if (this.#busy || this.#queue.length === 0) return;
    this.#busy = true;
    this.#draining = this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const batch = this.#takeBatch();
        if (batch.length === 0) return;
        this.#inFlight = batch.length;
        try {
          await this.#flush(batch);
        } catch (err) {
          // #flush settles every entry itself; this is a last resort against a bug.
          this.#logger?.error({ err }, 'unexpected error while writing a batch');
          for (const item of batch) item.reject(err);
        } finally {
          this.#inFlight = 0;
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Oldest first, one entry per stream, capped by count and bytes; the rest stays queued in order. */
  #takeBatch(): Queued[] {
    const queue = this.#queue;
    const batch: Queued[] = [];
    const skipped: Queued[] = [];
    const streams = new Set<string>();
    let bytes = 0;
    let i = 0;
    for (; i < queue.length && batch.length < this.#maxBatchEntries; i++) {
      const item = queue[i]!;
      if (streams.has(item.entry.streamId)) {
        skipped.push(item);
        continue;
      }
      if (batch.length > 0 && bytes + item.bytes > this.#maxBatchBytes) break;
      streams.add(item.entry.streamId);
      batch.push(item);
      bytes += item.bytes;
    }
    this.#queue = i === queue.length && skipped.length === 0 ? [] : skipped.concat(queue.slice(i));
    return batch;
  }

  /** Writes one batch, in its own span when it serves traced commands. */
  async #flush(batch: Queued[]): Promise<void> {
    const span = this.#tracer ? batchSpan(this.#tracer, batch) : undefined;
    if (!span) return this.#write(batch, undefined);
    try {
      await this.#write(batch, span);
    } finally {
      span.end();
    }
  }

  async #write(batch: Queued[], span: Span | undefined): Promise<void> {
    this.#stats.batches++;
    this.#stats.lastBatchEntries = batch.length;
    this.#stats.largestBatchEntries = Math.max(this.#stats.largestBatchEntries, batch.length);
    this.#onBatch?.(batch.length);

    let epoch: number;
    let move: PendingMove | undefined;
    try {
      epoch = this.#epoch();
      if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`ring epoch ${epoch} is not a non-negative integer`);
      move = this.#pendingMove();
      if (move && (!Number.isSafeInteger(move.epoch) || move.epoch < 1)) throw new RangeError(`move epoch ${move.epoch} is not a positive integer`);
    } catch (err) {
      this.#rejectAll(batch, err);
      return;
    }

    let client: pg.Client;
    try {
      client = await this.#connection();
    } catch (err) {
      this.#stats.unavailableBatches++;
      this.#logger?.warn({ err }, 'cannot connect to the event store');
      this.#rejectAll(batch, new StoreUnavailableError('cannot connect to the event store', { cause: err }));
      return;
    }

    let failure: unknown;
    try {
      const facts = await this.#run(client, batch, epoch, move, span);
      if (span) span.setAttributes(positionRange(facts));
      this.#settle(batch, facts, epoch, move);
      return;
    } catch (err) {
      failure = err;
      span?.setStatus({ code: SpanStatusCode.ERROR, message: classifyPgError(err) });
    }
    if (failure instanceof UnconfirmedCommitError) {
      // Committed here, not confirmed by the synchronous standby: the outcome is unknown, never success.
      this.#stats.unavailableBatches++;
      this.#logger?.warn({ err: failure }, 'a commit was not confirmed by the synchronous standby');
      this.#rejectAll(batch, failure);
      return;
    }

    const kind = classifyPgError(failure);
    if (kind === 'unavailable') {
      this.#unavailable(client, batch, failure);
      return;
    }
    if (kind === 'unknown' || batch.length === 1) {
      if (kind === 'unknown') this.#logger?.error({ err: failure }, 'append batch failed');
      this.#rejectAll(batch, entryError(batch[0]!.entry, kind, failure));
      return;
    }

    // A unique key, a value or a deadlock refused the statement: find the culprit
    // by writing the entries one by one, in order, so the others still commit (I5).
    this.#stats.fallbackBatches++;
    span?.addEvent('entry by entry');
    this.#logger?.warn({ err: failure, entries: batch.length }, 'append batch refused; retrying its entries one by one');
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      try {
        this.#settle([item], await this.#run(client, [item], epoch, move, span), epoch, move);
      } catch (err) {
        const itemKind = classifyPgError(err);
        if (itemKind === 'unavailable') {
          this.#unavailable(client, batch.slice(i), err);
          return;
        }
        if (itemKind === 'unknown') this.#logger?.error({ err, streamId: item.entry.streamId }, 'append failed');
        this.#reject(item, entryError(item.entry, itemKind, err));
      }
    }
  }

  /**
   * Runs the batch statement. PostgreSQL answers a commit whose wait for the
   * synchronous standby was cancelled with a WARNING and success (the
   * transaction committed locally, maybe not on the standby): that is turned
   * into an {@link UnconfirmedCommitError}, so no caller is told "durable".
   */
  async #run(client: pg.Client, batch: readonly Queued[], epoch: number, move: PendingMove | undefined, span: Span | undefined): Promise<FactsByKind> {
    let unconfirmed: NoticeMessage | undefined;
    const onNotice = (notice: NoticeMessage) => {
      if (isUnconfirmedCommit(notice)) unconfirmed = notice;
    };
    client.on('notice', onNotice);
    try {
      const statement = { name: STATEMENT_NAME, text: APPEND_BATCH_SQL, values: appendBatchValues(batch, epoch, move) };
      // The statement's span (the pg instrumentation's) goes under the batch's, whoever started the writer.
      const result = await (span ? context.with(trace.setSpan(ROOT_CONTEXT, span), () => client.query<AppendBatchFact>(statement)) : client.query<AppendBatchFact>(statement));
      if (unconfirmed) throw new UnconfirmedCommitError(unconfirmed);
      return factsByKind(result.rows);
    } finally {
      client.off('notice', onNotice);
    }
  }

  #settle(batch: readonly Queued[], facts: FactsByKind, epoch: number, move: PendingMove | undefined): void {
    this.#onCommitted?.();
    let outcomes: EntryOutcome[];
    try {
      outcomes = entryOutcomes(
        batch.map((item) => item.entry.streamId),
        facts,
      );
    } catch (err) {
      this.#logger?.error({ err }, 'cannot read the append outcomes');
      this.#rejectAll(batch, err);
      return;
    }
    batch.forEach((item, i) => {
      try {
        this.#settleOne(item, outcomes[i]!, epoch, move);
      } catch (err) {
        this.#logger?.error({ err, streamId: item.entry.streamId }, 'cannot read an append outcome');
        this.#reject(item, err);
      }
    });
  }

  #settleOne(item: Queued, row: EntryOutcome, epoch: number, move: PendingMove | undefined): void {
    const { entry } = item;
    const fence = toSafeInteger(row.fenceEpoch, 'shard_fence.epoch');
    if (fence > epoch) {
      this.#reject(item, new WrongShardError(fence, `the event store is fenced at epoch ${fence}, above this writer's ${epoch}`));
      return;
    }
    if (row.duplicateCommandId !== null) {
      this.#reject(item, new DuplicateCommandError(entry.streamId, row.duplicateCommandId));
      return;
    }
    if (row.positions !== null) {
      const positions = row.positions.map((p) => toBigInt(p, 'events.position'));
      if (positions.length !== entry.events.length) {
        throw new Error(`expected ${entry.events.length} positions for ${entry.streamId}, got ${positions.length}`);
      }
      this.#stats.entries++;
      this.#stats.events += positions.length;
      item.resolve({
        streamId: entry.streamId,
        version: entry.baseVersion + entry.events.length,
        positions,
        recordedAt: row.recordedAt,
      });
      return;
    }
    // The move fence (see append-batch-sql.ts): refused exactly when the statement's rule says so.
    const movingEpoch = row.movingEpoch === null ? undefined : toSafeInteger(row.movingEpoch, 'shard_fence.moving_epoch');
    if (movingEpoch !== undefined && movingEpoch > epoch) {
      if (move?.epoch !== movingEpoch) {
        this.#reject(item, new StreamMovingError(movingEpoch, MOVING_RETRY_AFTER_MS, `the event store is sealed for a move to epoch ${movingEpoch}, which this shard has not heard of yet`, true));
        return;
      }
      if (move.movesAway(entry.aggregateId)) {
        this.#reject(item, new StreamMovingError(movingEpoch, MOVING_RETRY_AFTER_MS, `stream ${entry.streamId} is moving to another shard at epoch ${movingEpoch}`));
        return;
      }
    }
    if (row.movedAtEpoch !== null) {
      const movedAt = toSafeInteger(row.movedAtEpoch, 'streams.moved_at_epoch');
      // Sealed for a ring newer than ours: the move is under way, retry finds the new owner.
      if (movedAt > epoch) {
        this.#reject(item, new StreamMovingError(movedAt, MOVING_RETRY_AFTER_MS, `stream ${entry.streamId} is moving to another shard at epoch ${movedAt}`));
      } else {
        this.#reject(item, new WrongShardError(movedAt, `stream ${entry.streamId} moved to another shard at epoch ${movedAt}`));
      }
      return;
    }
    // The snapshot's version; equal to the expected one only when a concurrent
    // writer changed the row after the snapshot, and then we do not know it.
    const current = row.currentVersion === null ? 0 : toSafeInteger(row.currentVersion, 'streams.version');
    this.#reject(item, new ConcurrencyError(entry.streamId, current === entry.baseVersion ? undefined : current));
  }

  #reject(item: Queued, err: unknown): void {
    this.#stats.rejectedEntries++;
    item.reject(err);
  }

  #rejectAll(batch: readonly Queued[], err: unknown): void {
    for (const item of batch) this.#reject(item, err);
  }

  #unavailable(client: pg.Client, batch: readonly Queued[], err: unknown): void {
    this.#stats.unavailableBatches++;
    const code = errorCode(err);
    // A server-side timeout leaves the session usable; anything else may have broken it.
    if (code !== '57014' && code !== '55P03') this.#discard(client);
    this.#logger?.warn({ err, code }, 'event store unavailable during an append');
    this.#rejectAll(
      batch,
      new StoreUnavailableError(code === '57014' ? 'the event store timed out; nothing was appended' : 'the event store connection failed; the append may or may not have committed', { cause: err }),
    );
  }

  async #connection(): Promise<pg.Client> {
    if (this.#client !== undefined) return this.#client;
    const client = new pg.Client({
      connectionString: this.#connectionString,
      application_name: this.#applicationName,
      keepAlive: true,
      connectionTimeoutMillis: this.#statementTimeoutMs,
      query_timeout: this.#statementTimeoutMs + NETWORK_GRACE_MS,
    });
    // Without a listener an idle connection's death would crash the process (I10).
    client.on('error', (err) => {
      this.#logger?.warn({ err }, 'event store writer connection failed');
      this.#discard(client);
    });
    client.on('end', () => {
      if (this.#client === client) this.#client = undefined;
    });
    try {
      await client.connect();
      await client.query(`SET synchronous_commit = on; ${APPEND_SESSION_SETTINGS}; ` + `SET statement_timeout = ${this.#statementTimeoutMs}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    this.#client = client;
    return client;
  }

  /** Forgets a connection that failed; the next batch opens a new one. */
  #discard(client: pg.Client): void {
    if (this.#client === client) this.#client = undefined;
    client.end().catch(() => {});
  }
}

/**
 * The span of a batch that serves traced commands: a child of the first
 * traced entry's parent (its first command's span), linked to each command
 * span of every entry.
 */
function batchSpan(tracer: Tracer, batch: readonly Queued[]): Span | undefined {
  let parent: SpanContext | undefined;
  const links: { context: SpanContext }[] = [];
  let commands = 0;
  let events = 0;
  for (const { entry } of batch) {
    commands += entry.commands.length;
    events += entry.events.length;
    if (!entry.trace) continue;
    parent ??= entry.trace.parent;
    for (const context of entry.trace.links) links.push({ context });
  }
  if (!parent) return undefined;
  return tracer.startSpan(
    'group commit',
    {
      links,
      attributes: {
        'db.system.name': 'postgresql',
        'shardwrite.batch.entries': batch.length,
        'shardwrite.batch.commands': commands,
        'shardwrite.batch.events': events,
      },
    },
    trace.setSpanContext(ROOT_CONTEXT, parent),
  );
}

/** The first and last position a batch's statement appended. */
function positionRange(facts: FactsByKind): Record<string, string> {
  let first: bigint | undefined;
  let last: bigint | undefined;
  for (const appended of facts.appended ?? []) {
    for (const p of appended.positions) {
      const v = BigInt(p);
      if (first === undefined || v < first) first = v;
      if (last === undefined || v > last) last = v;
    }
  }
  return first === undefined ? {} : { 'shardwrite.batch.first_position': String(first), 'shardwrite.batch.last_position': String(last) };
}

/** What the writer reads of a PostgreSQL notice (node-postgres' `notice` event). */
interface NoticeMessage {
  readonly severity?: string;
  readonly message?: string;
}

/**
 * A commit PostgreSQL did locally but whose wait for the synchronous standby
 * was cancelled: it may be lost with a failover. Reported as the retryable
 * "outcome unknown" (a retry with the same command id answers `duplicate`).
 */
export class UnconfirmedCommitError extends StoreUnavailableError {
  constructor(notice: NoticeMessage) {
    super('the commit was not confirmed by the synchronous standby: its outcome is unknown, retry with the same command_id', { cause: notice });
  }
}

/** PostgreSQL's "canceling wait for synchronous replication" warning (SyncRepWaitForLSN). */
function isUnconfirmedCommit(notice: NoticeMessage): boolean {
  return notice.severity === 'WARNING' && /synchronous replication/i.test(notice.message ?? '');
}

/** The error for one entry the database refused while written alone. */
function entryError(entry: AppendEntry, kind: PgErrorKind, err: unknown): unknown {
  switch (kind) {
    case 'unique-violation':
    case 'transient-conflict':
      // The (stream, version) key or a concurrent transaction won: the pipeline
      // reloads, finds a duplicate command if that is what it was, or decides again.
      return new ConcurrencyError(entry.streamId, undefined);
    case 'data':
      return new ValidationError([
        {
          field: 'events',
          description: `the event store refused the data (SQLSTATE ${errorCode(err) ?? 'unknown'})`,
        },
      ]);
    case 'unavailable':
      return new StoreUnavailableError('the event store is unavailable', { cause: err });
    case 'unknown':
      return err;
  }
}

/**
 * Checks an entry's shape and serializes its data once, at `append`, so a bad
 * entry is refused before it can share a batch.
 * @throws TypeError / RangeError describing the first problem.
 */
function prepareEntry(entry: AppendEntry): Pick<Queued, 'data' | 'metadata' | 'bytes'> {
  const fail = (problem: string): never => {
    throw new TypeError(`invalid append entry for stream ${String(entry?.streamId)}: ${problem}`);
  };
  if (typeof entry !== 'object' || entry === null) fail('not an object');
  if (typeof entry.streamId !== 'string' || entry.streamId === '') fail('streamId must be a non-empty string');
  if (typeof entry.aggregateType !== 'string' || entry.aggregateType === '') fail('aggregateType must be a non-empty string');
  if (typeof entry.aggregateId !== 'string' || entry.aggregateId === '') fail('aggregateId must be a non-empty string');
  if (!Number.isSafeInteger(entry.baseVersion) || entry.baseVersion < 0) {
    fail(`baseVersion must be a non-negative integer, got ${entry.baseVersion}`);
  }
  if (!Array.isArray(entry.events) || entry.events.length === 0) fail('events must be a non-empty array');
  if (!Number.isSafeInteger(entry.baseVersion + entry.events.length)) fail('the new version is not a safe integer');
  if (!Array.isArray(entry.commands) || entry.commands.length === 0) fail('commands must be a non-empty array');

  let counted = 0;
  const ids = new Set<string>();
  for (const command of entry.commands) {
    if (!Number.isSafeInteger(command.eventCount) || command.eventCount < 1) {
      fail(`a command's eventCount must be a positive integer, got ${command.eventCount}`);
    }
    counted += command.eventCount;
    if (command.commandId !== undefined) {
      if (typeof command.commandId !== 'string' || command.commandId === '') fail('commandId must be a non-empty string');
      if (ids.has(command.commandId)) fail(`command id ${command.commandId} appears twice`);
      ids.add(command.commandId);
    }
  }
  if (counted !== entry.events.length) {
    fail(`the commands account for ${counted} events but the entry has ${entry.events.length}`);
  }

  let bytes = Buffer.byteLength(entry.streamId) + Buffer.byteLength(entry.aggregateType) + Buffer.byteLength(entry.aggregateId);
  for (const id of ids) bytes += Buffer.byteLength(id);
  const data: string[] = [];
  const metadata: string[] = [];
  entry.events.forEach((event, i) => {
    if (typeof event.type !== 'string' || event.type === '') fail(`events[${i}].type must be a non-empty string`);
    if (!Number.isSafeInteger(event.schemaVersion) || event.schemaVersion < 1 || event.schemaVersion > 2 ** 31 - 1) {
      fail(`events[${i}].schemaVersion must be a positive 32-bit integer`);
    }
    const json = serialize(event.data, `events[${i}].data`, fail);
    if (typeof event.metadata !== 'object' || event.metadata === null || Array.isArray(event.metadata)) {
      fail(`events[${i}].metadata must be an object of strings`);
    }
    for (const [key, value] of Object.entries(event.metadata)) {
      if (typeof value !== 'string') fail(`events[${i}].metadata.${key} must be a string`);
    }
    const meta = serialize(event.metadata, `events[${i}].metadata`, fail);
    data.push(json);
    metadata.push(meta);
    bytes += Buffer.byteLength(event.type) + Buffer.byteLength(json) + Buffer.byteLength(meta);
  });
  return { data, metadata, bytes };
}

function serialize(value: unknown, what: string, fail: (problem: string) => never): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    fail(`${what} is not JSON-serializable (${err instanceof Error ? err.message : String(err)})`);
  }
  if (json === undefined) fail(`${what} is not JSON-serializable`);
  return json;
}

/**
 * The command pipeline of a shard (ARCHITECTURE.md, "the way a command
 * travels"): validate → authorize → ownership → mailbox → load → decide →
 * append. Each stage is timed. Commands for one stream run one after another
 * in its mailbox; the commands queued there are decided together against the
 * evolving state and appended as one batch entry, each keeping its own
 * outcome. Commands for different streams run concurrently and meet again in
 * the shard's single group-commit writer.
 */
import type { AnyDecider } from '../domain/decider.js';
import type { CommandSpec, RoutedCommand } from '../domain/module.js';
import {
  AggregateNotFoundError,
  CommandIdReusedError,
  ConcurrencyError,
  DeadlineExceededError,
  DuplicateCommandError,
  OverloadedError,
  ShardwriteError,
  StoreUnavailableError,
  StreamMovingError,
  ValidationError,
  VersionConflictError,
  WrongShardError,
  asError,
} from '../errors.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { formatTraceparent, stageEvents, traceFields, type Span, type Tracer } from '../observability/tracing.js';
import type { AppendEntry, Appender, EventMetadata, EventReader, NewEvent, StoredEvent } from '../store/types.js';
import { createHash } from 'node:crypto';
import type { Authorizer } from '../auth/authorize.js';
import { mayAccessTenant, type Identity } from '../auth/identity.js';
import { fullJitterDelay, sleep, withTimeout } from './backoff.js';
import type { AggregateLoader } from './loader.js';
import type { CommandVersions } from './owner-cache.js';
import type { Ownership } from './ownership.js';
import { SubjectErasedError, type PersonalData } from '../privacy/personal-data.js';

/** What the caller's transport tells the pipeline about a call. */
export interface CallContext {
  /** Absolute deadline (ms since epoch); the command is not started after it. */
  readonly deadline?: number;
  /** The caller, as its server's interceptor (or the router, on the link) verified it; none = refused. */
  readonly identity?: Identity;
  readonly correlationId?: string;
  readonly causationId?: string;
  /**
   * The command's span at this shard, when traced: the pipeline adds its
   * stages to it and records its context in the events' `traceparent`.
   */
  readonly span?: Span;
  /** The caller's `traceparent`, well-formed (`validTraceparent`), recorded in the events when the command has no span. */
  readonly traceparent?: string;
  /**
   * Whom the command counts against in the share of `maxInFlight` one caller
   * may hold (`callerKey`: its principal, else its connection; on a router's
   * link, the caller the router names). Unset: counted in the total only.
   */
  readonly caller?: string;
}

/** The result of one command, as sent back in `CommandResult`. */
export interface CommandOutcome {
  readonly streamId: string;
  readonly version: number;
  readonly events: readonly StoredEvent[];
  readonly duplicate: boolean;
}

export interface PipelineOptions {
  /** Attempts at deciding + appending when another writer raced us; default 6. */
  readonly maxAttempts: number;
  /** Backoff base and cap between conflict retries (full jitter); defaults 5 and 200 ms. */
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /** Total time a command may spend retrying conflicts; default 2000 ms. */
  readonly retryBudgetMs: number;
  /** Bound on loading an aggregate; default 2000 ms. */
  readonly loadTimeoutMs: number;
  /** Commands accepted and unanswered per shard before OVERLOADED; default 10,000. */
  readonly maxInFlight: number;
  /**
   * The share (1..100) of `maxInFlight` one caller (`CallContext.caller`) may
   * hold, so one principal or connection cannot take a shard's whole budget,
   * however many routers or streams it uses; default 25.
   */
  readonly callerSharePercent: number;
  /** Commands queued per stream before OVERLOADED; default 1,000. */
  readonly maxQueuedPerStream: number;
  /** Commands decided together into one append entry; default 256. */
  readonly maxCommandsPerEntry: number;
  /** Retry hint sent with OVERLOADED; default 100 ms. */
  readonly overloadRetryAfterMs: number;
  /**
   * How long a command whose stream a rebalance is moving away waits for the
   * new ring before it is answered UNAVAILABLE / STREAM_MOVING; when the ring
   * arrives in time it is answered WRONG_SHARD instead, which the router
   * retries at the new owner. Bounded by the command's deadline. Default 2000 ms.
   */
  readonly moveWaitMs: number;
  /**
   * Decide a command for a stream not in memory first as if the stream were
   * new, skipping the read (see `process`); default true.
   */
  readonly assumeNewStreams: boolean;
}

/** Stream tenants the pipeline remembers. @default 100000 */
const TENANT_CACHE_ENTRIES = 100_000;

/**
 * A digest of what a command asks for (its type and data; not its id or
 * expected version, and not its stream, which command ids are scoped to): a
 * retry has the same one, another request under the same command id a
 * different one.
 */
export function requestDigest(routed: RoutedCommand): string {
  return createHash('sha256').update(JSON.stringify(routed.command)).digest('base64url').slice(0, 32);
}

/** Longest `x-correlation-id` / `x-causation-id` accepted. @default 128 */
export const MAX_TRACE_ID_LENGTH = 128;

/**
 * Correlation and causation ids are recorded with every event: bounded and
 * printable ASCII, like any other input.
 *
 * @throws ValidationError (nothing is written).
 */
export function checkTraceIds(ctx: Pick<CallContext, 'correlationId' | 'causationId'>): void {
  const violations: { field: string; description: string }[] = [];
  for (const [field, value] of [['x-correlation-id', ctx.correlationId], ['x-causation-id', ctx.causationId]] as const) {
    if (value === undefined) continue;
    if (value.length === 0 || value.length > MAX_TRACE_ID_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
      violations.push({ field, description: `must be 1..${MAX_TRACE_ID_LENGTH} printable ASCII characters without spaces` });
    }
  }
  if (violations.length > 0) throw new ValidationError(violations);
}

/** Time left to the caller after a move wait, for the router's retry at the new owner. */
const MOVE_ANSWER_MARGIN_MS = 250;

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
  overloadRetryAfterMs: 100,
  moveWaitMs: 2000,
  assumeNewStreams: true,
};

export interface PipelineDeps {
  readonly deciders: ReadonlyMap<string, AnyDecider>;
  readonly reader: EventReader;
  readonly appender: Appender;
  readonly loader: AggregateLoader;
  readonly authorizer: Authorizer;
  readonly ownership: Ownership;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
  /** Injected clock (ISO time given to deciders, deadlines); default Date.now. */
  readonly now?: () => number;
  /** Adds a span per asynchronous stage under each traced command's span (`CallContext.span`); default: none. */
  readonly tracer?: Tracer;
  /**
   * Seals the personal data of decided events before they are appended, and
   * opens it for duplicate replies; without it events are stored as decided.
   */
  readonly personalData?: PersonalData;
  /** Called after each successful append, off the command's critical path (snapshots, cache). */
  readonly afterAppend?: (streamId: string, decider: AnyDecider, version: number, state: unknown) => void;
}

interface Pending {
  readonly routed: RoutedCommand;
  readonly identity: Identity;
  /** Digest of the request, recorded with its command id (set when it has one). */
  readonly digest: string | undefined;
  readonly streamId: string;
  readonly metadata: EventMetadata;
  readonly deadline: number | undefined;
  readonly enqueuedAt: number;
  /** Its span, when traced (`CallContext.span`), and when it entered the mailbox (`performance.now()`). */
  readonly span: Span | undefined;
  readonly spanQueuedAt: number;
  readonly resolve: (outcome: CommandOutcome) => void;
  readonly reject: (err: unknown) => void;
}

interface Mailbox {
  readonly decider: AnyDecider;
  readonly queue: Pending[];
  running: boolean;
}

/** How one command fared in one decide round. */
type Decision =
  | { kind: 'append'; p: Pending; events: NewEvent[]; firstVersion: number }
  | { kind: 'duplicate'; p: Pending; versions: CommandVersions }
  | { kind: 'failed'; p: Pending; error: unknown };

export class CommandPipeline {
  private readonly options: PipelineOptions;
  private readonly mailboxes = new Map<string, Mailbox>();
  private readonly tenants = new Map<string, string>();
  private inFlight = 0;
  /** Commands accepted and unanswered per caller (only callers holding some). */
  private readonly callers = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly deps: PipelineDeps,
    options: Partial<PipelineOptions> = {},
  ) {
    this.options = { ...DEFAULT_PIPELINE_OPTIONS, ...options };
    this.now = deps.now ?? Date.now;
  }

  /** Commands accepted and not yet answered. */
  get pending(): number {
    return this.inFlight;
  }

  /**
   * Runs one command end to end. Resolves once its events are durable (I1);
   * rejects with a `ShardwriteError` (or, for bugs, anything else: INTERNAL).
   */
  async execute(spec: CommandSpec, request: unknown, ctx: CallContext): Promise<CommandOutcome> {
    const end = this.deps.metrics.stageSeconds.startTimer({ stage: 'total' });
    try {
      const outcome = await this.admit(spec, request, ctx);
      end({ outcome: 'ok' });
      return outcome;
    } catch (err) {
      end({ outcome: 'error' });
      this.deps.metrics.rejections.inc({ reason: err instanceof ShardwriteError ? err.reason : 'INTERNAL' });
      throw err;
    }
  }

  /**
   * The stages before the mailbox run synchronously, so commands for one
   * stream enter its mailbox in exactly the order they arrived.
   */
  private admit(spec: CommandSpec, request: unknown, ctx: CallContext): Promise<CommandOutcome> {
    const { metrics } = this.deps;
    const { span } = ctx;
    const routed = metrics.timeSync('validate', () => spec.toCommand(request));
    const decider = this.deps.deciders.get(routed.aggregateType);
    if (!decider) throw new Error(`no decider registered for ${routed.aggregateType}`);
    checkTraceIds(ctx);
    span?.addEvent('validated', { 'shardwrite.command': routed.command.type, 'shardwrite.aggregate_type': routed.aggregateType });
    const identity = metrics.timeSync('authorize', () => this.deps.authorizer.authorize(ctx.identity, routed.aggregateType));
    span?.addEvent('authorized');
    metrics.timeSync('ownership', () => this.deps.ownership.assertOwner(routed.aggregateId));
    span?.addEvent('owned');
    if (ctx.deadline !== undefined && ctx.deadline <= this.now()) throw new DeadlineExceededError();
    return this.enqueue(decider, routed, ctx, identity);
  }

  /** Waits until every accepted command has its outcome (graceful shutdown). */
  async drain(pollMs = 10): Promise<void> {
    while (this.inFlight > 0) await sleep(pollMs);
  }

  private enqueue(decider: AnyDecider, routed: RoutedCommand, ctx: CallContext, identity: Identity): Promise<CommandOutcome> {
    const streamId = `${routed.aggregateType}-${routed.aggregateId}`;
    let mailbox = this.mailboxes.get(streamId);
    // Refuse before doing any work, so memory stays bounded whatever callers do.
    if (this.inFlight >= this.options.maxInFlight || (mailbox && mailbox.queue.length >= this.options.maxQueuedPerStream)) {
      throw new OverloadedError(this.options.overloadRetryAfterMs);
    }
    const caller = ctx.caller;
    const held = caller === undefined ? 0 : (this.callers.get(caller) ?? 0);
    if (caller !== undefined && held >= Math.max(1, Math.floor((this.options.maxInFlight * this.options.callerSharePercent) / 100))) {
      throw new OverloadedError(this.options.overloadRetryAfterMs, 'this caller has too many commands in flight at the shard, retry later');
    }
    if (!mailbox) {
      mailbox = { decider, queue: [], running: false };
      this.mailboxes.set(streamId, mailbox);
    }
    // Audit (I14): who caused the events, and in which correlation.
    const metadata: Record<string, string> = { principal: identity.principal, tenant: identity.tenant };
    const digest = routed.commandId ? requestDigest(routed) : undefined;
    if (routed.commandId) metadata.command_id = routed.commandId;
    if (digest) metadata.request_digest = digest;
    metadata.correlation_id = ctx.correlationId ?? routed.commandId ?? '';
    if (metadata.correlation_id === '') delete metadata.correlation_id;
    if (ctx.causationId) metadata.causation_id = ctx.causationId;
    // I14: the trace the events were written in, for their consumers to continue.
    const traceparent = ctx.span ? formatTraceparent(ctx.span.spanContext()) : ctx.traceparent;
    if (traceparent) metadata.traceparent = traceparent;
    this.inFlight++;
    if (caller !== undefined) this.callers.set(caller, held + 1);
    this.deps.metrics.inFlight.inc();
    const done = () => {
      this.inFlight--;
      if (caller !== undefined) {
        const left = (this.callers.get(caller) ?? 1) - 1;
        if (left === 0) this.callers.delete(caller);
        else this.callers.set(caller, left);
      }
      this.deps.metrics.inFlight.dec();
    };
    return new Promise<CommandOutcome>((resolve, reject) => {
      mailbox.queue.push({
        routed,
        identity,
        digest,
        streamId,
        metadata,
        deadline: ctx.deadline,
        enqueuedAt: this.now(),
        span: ctx.span,
        spanQueuedAt: ctx.span ? performance.now() : 0,
        resolve: (o) => {
          done();
          resolve(o);
        },
        reject: (e) => {
          done();
          reject(asError(e));
        },
      });
      if (!mailbox.running) void this.work(streamId, mailbox);
    });
  }

  /** Works through a stream's mailbox until it is empty; never throws. */
  private async work(streamId: string, mailbox: Mailbox): Promise<void> {
    mailbox.running = true;
    try {
      while (mailbox.queue.length > 0) {
        const batch = mailbox.queue.splice(0, this.options.maxCommandsPerEntry);
        const queueTimer = this.deps.metrics.stageSeconds;
        for (const p of batch) queueTimer.observe({ stage: 'queue', outcome: 'ok' }, (this.now() - p.enqueuedAt) / 1000);
        if (this.deps.tracer) {
          const now = performance.now();
          for (const p of batch) if (p.span) stageEvents([p.span], 'queue', p.spanQueuedAt, now, { 'shardwrite.mailbox.batch': batch.length });
        }
        try {
          await this.process(streamId, mailbox.decider, batch);
        } catch (err) {
          // process() settles every command itself; this is a last line of defence.
          this.deps.logger.error({ err, streamId }, 'mailbox batch failed unexpectedly');
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      mailbox.running = false;
      if (mailbox.queue.length === 0) this.mailboxes.delete(streamId);
      else void this.work(streamId, mailbox);
    }
  }

  /**
   * Decides and appends one batch of a stream's commands, retrying the whole
   * round when another writer changed the stream under us. Settles each
   * command exactly once.
   */
  private async process(streamId: string, decider: AnyDecider, batch: Pending[]): Promise<void> {
    const { metrics, loader } = this.deps;
    const started = this.now();
    let live = this.dropExpired(batch);
    // A stream not in memory is first assumed not to exist: most cold commands create one (a
    // new order), and appending at version 0 proves it or refutes it without a read. Refuted —
    // the append conflicts, or a decision on the empty state is not a plain append — the round
    // is decided again on the stream as loaded, without counting an attempt or backing off.
    let guess = this.options.assumeNewStreams ? loader.assumeNew(streamId, decider) : undefined;
    for (let attempt = 0; live.length > 0; attempt++) {
      const assumed = guess;
      guess = undefined;
      // The stream's tenant is read beside the load, not after it (an extra round trip only for
      // a stream whose tenant is not remembered yet: the first command after a start or a move).
      const tenantLookup = assumed ? undefined : this.tenantOf(streamId).catch((err: unknown) => err as Error);
      const { tracer } = this.deps;
      const spans = tracer ? live.map((p) => p.span) : undefined;
      let stageStart = tracer ? performance.now() : 0;
      const loaded = assumed ?? await metrics
        .time('load', () =>
          withTimeout(loader.load(streamId, decider), this.options.loadTimeoutMs, () => new StoreUnavailableError('loading the aggregate timed out')),
        )
        .catch((err: unknown) => err as Error);
      if (tracer) {
        const attributes = loaded instanceof Error ? { 'error.type': loaded.name } : { 'shardwrite.load.tier': loaded.tier, 'shardwrite.load.replayed_events': loaded.replayed };
        stageEvents(spans!, 'load', stageStart, performance.now(), { ...attributes, 'shardwrite.attempt': attempt });
      }
      if (loaded instanceof Error) {
        for (const p of live) p.reject(loaded);
        return;
      }
      const tenant = loaded.version === 0 ? undefined : await (tenantLookup ?? this.tenantOf(streamId).catch((err: unknown) => err as Error));
      if (tenant instanceof Error) {
        for (const p of live) p.reject(tenant);
        return;
      }
      const known = await this.knownCommands(streamId, loaded.commandIds, live);
      if (known instanceof Error) {
        for (const p of live) p.reject(known);
        return;
      }
      if (tracer) stageStart = performance.now();
      const round = await metrics.time('decide', () => this.decide(decider, loaded.state, loaded.version, live, known, tenant));
      if (tracer) stageEvents(spans!, 'decide', stageStart, performance.now(), { 'shardwrite.attempt': attempt, 'shardwrite.decided.commands': live.length });
      if (assumed && round.decisions.some((d) => d.kind !== 'append')) {
        attempt--;
        continue;
      }
      if (round.toAppend.length === 0) {
        await this.settle(streamId, decider, round.decisions, undefined);
        return;
      }
      // Personal data leaves the process only sealed; a command that would record an erased
      // subject's is refused, and the round decided again without it (its state changed).
      let stored: NewEvent[] | undefined;
      if (this.deps.personalData) {
        const sealed = await this.deps.personalData.seal(streamId, decider, round.toAppend).catch((err: unknown) => err as Error);
        if (sealed instanceof Error) {
          for (const d of round.decisions) d.p.reject(d.kind === 'failed' ? d.error : sealed);
          return;
        }
        // Decided as a new stream without reading it: the stream may exist and hold this very
        // command (a retry answers `duplicate`, I4, erased or not), so read it and decide again.
        if (assumed && sealed.refused.some((subject) => subject !== undefined)) {
          attempt--;
          continue;
        }
        const refused = new Set<Pending>();
        round.toAppend.forEach((d, i) => {
          const subject = sealed.refused[i];
          if (subject === undefined) return;
          refused.add(d.p);
          d.p.reject(new SubjectErasedError(subject));
        });
        if (refused.size > 0) {
          live = live.filter((p) => !refused.has(p));
          attempt--;
          continue;
        }
        stored = sealed.stored.flat();
      }
      const entry = this.entryFor(streamId, loaded.version, round.toAppend, round.tenant, stored);
      if (tracer) stageStart = performance.now();
      try {
        const result = await metrics.time('append', () => this.deps.appender.append(entry)).finally(() => {
          if (tracer) stageEvents(round.toAppend.map((d) => d.p.span), 'append', stageStart, performance.now(), { 'shardwrite.attempt': attempt });
        });
        const commandIds = loaded.commandIds ? new Map(loaded.commandIds) : undefined;
        for (const d of round.toAppend) {
          const id = d.p.routed.commandId;
          if (id && commandIds) commandIds.set(id, { firstVersion: d.firstVersion, lastVersion: d.firstVersion + d.events.length - 1, ...(d.p.digest ? { requestDigest: d.p.digest } : {}) });
        }
        loader.remember(streamId, { state: round.state, version: result.version, commandIds, snapshotVersion: loaded.snapshotVersion });
        if (round.tenant !== undefined) this.rememberTenant(streamId, round.tenant);
        if (attempt > 0) metrics.retries.inc({ outcome: 'succeeded' });
        await this.settle(streamId, decider, round.decisions, { positions: result.positions, recordedAt: result.recordedAt, first: loaded.version + 1 });
        this.deps.afterAppend?.(streamId, decider, result.version, round.state);
        return;
      } catch (err) {
        loader.forget(streamId);
        if (assumed && (err instanceof ConcurrencyError || err instanceof DuplicateCommandError)) {
          attempt--;
          continue;
        }
        if (spans) for (const span of spans) span?.addEvent('append refused', { 'error.type': (err as Error).name ?? 'Error', 'shardwrite.attempt': attempt });
        if (err instanceof StreamMovingError) {
          const next = await this.awaitMove(err, live);
          if (next === 'retry' && attempt + 1 < this.options.maxAttempts) {
            live = this.dropExpired(live);
            continue;
          }
          // Nothing was written. The state this round was decided on is the stream's final one
          // here, so its refusals stand; the others are told where to go, or to come back.
          const answer = next === 'moved' ? new WrongShardError(err.targetEpoch, `the stream moved to another shard at epoch ${err.targetEpoch}`) : err;
          for (const d of round.decisions) d.p.reject(d.kind === 'failed' ? d.error : answer);
          return;
        }
        if (err instanceof WrongShardError) {
          this.deps.ownership.onFenced(err.epoch);
          for (const p of live) p.reject(err);
          return;
        }
        if (!(err instanceof ConcurrencyError || err instanceof DuplicateCommandError)) {
          // Unknown commit outcome or a dead store: the caller retries with its command id.
          for (const d of round.decisions) d.p.reject(d.kind === 'failed' ? d.error : err);
          return;
        }
        metrics.conflicts.inc();
        const elapsed = this.now() - started;
        if (attempt + 1 >= this.options.maxAttempts || elapsed >= this.options.retryBudgetMs) {
          metrics.retries.inc({ outcome: 'exhausted' });
          const current = err instanceof ConcurrencyError ? (err.currentVersion ?? loaded.version) : loaded.version;
          for (const p of live) p.reject(new VersionConflictError(streamId, current));
          return;
        }
        const backoffMs = fullJitterDelay(attempt, this.options.retryBaseMs, this.options.retryCapMs);
        if (spans) for (const span of spans) span?.addEvent('conflict retry', { 'shardwrite.attempt': attempt + 1, 'shardwrite.backoff_ms': backoffMs });
        await sleep(backoffMs);
        live = this.dropExpired(live);
      }
    }
  }

  /**
   * After the store refused an append because its stream is moving: `retry`
   * when the store is sealed for a move this shard had not heard of (the ring
   * was re-read; the stream may not be moving at all), `moved` when the new
   * ring arrived within the wait (answer WRONG_SHARD), `moving` otherwise.
   */
  private async awaitMove(err: StreamMovingError, live: readonly Pending[]): Promise<'retry' | 'moved' | 'moving'> {
    const { ownership } = this.deps;
    if (err.planUnknown) {
      await ownership.refresh?.();
      return 'retry';
    }
    if (!ownership.awaitEpoch) return 'moving';
    const now = this.now();
    let budget = this.options.moveWaitMs;
    for (const p of live) if (p.deadline !== undefined) budget = Math.min(budget, p.deadline - now - MOVE_ANSWER_MARGIN_MS);
    if (budget <= 0) return 'moving';
    return (await ownership.awaitEpoch(err.targetEpoch, budget)) ? 'moved' : 'moving';
  }

  /** Rejects commands whose deadline passed while they waited; returns the rest. */
  private dropExpired(batch: Pending[]): Pending[] {
    const now = this.now();
    return batch.filter((p) => {
      if (p.deadline === undefined || p.deadline > now) return true;
      p.reject(new DeadlineExceededError('deadline passed while the command waited'));
      return false;
    });
  }

  /**
   * Command ids of this batch already recorded on the stream. Uses the
   * cached index when it is complete, else one batched store lookup.
   */
  private async knownCommands(
    streamId: string,
    cached: ReadonlyMap<string, CommandVersions> | undefined,
    live: Pending[],
  ): Promise<ReadonlyMap<string, CommandVersions> | Error> {
    const ids = [...new Set(live.map((p) => p.routed.commandId).filter((id): id is string => id !== undefined))];
    if (ids.length === 0) return new Map();
    if (cached) return cached;
    try {
      const records = await this.deps.reader.findCommands(ids.map((commandId) => ({ streamId, commandId })));
      return new Map(records.map((r) => [r.commandId, { firstVersion: r.firstVersion, lastVersion: r.lastVersion, ...(r.requestDigest ? { requestDigest: r.requestDigest } : {}) }]));
    } catch (err) {
      return err as Error;
    }
  }

  /** Decides each command in order against the evolving state. Pure apart from the clock. */
  private decide(
    decider: AnyDecider,
    initialState: unknown,
    initialVersion: number,
    live: Pending[],
    known: ReadonlyMap<string, CommandVersions>,
    streamTenant: string | undefined,
  ): { state: unknown; decisions: Decision[]; toAppend: Extract<Decision, { kind: 'append' }>[]; tenant: string | undefined } {
    let state = initialState;
    // A new stream belongs to the tenant of the command that creates it.
    let tenant = streamTenant;
    let version = initialVersion;
    const decisions: Decision[] = [];
    const toAppend: Extract<Decision, { kind: 'append' }>[] = [];
    const inThisRound = new Map<string, CommandVersions>();
    const at = new Date(this.now()).toISOString();
    for (const p of live) {
      const { routed } = p;
      // Another tenant's aggregate is answered as one that does not exist (before anything else,
      // a duplicate's result included), so its id's existence is not revealed by the answer's kind.
      if (tenant !== undefined && !mayAccessTenant(p.identity, tenant)) {
        decisions.push({ kind: 'failed', p, error: new AggregateNotFoundError(`${routed.aggregateType} ${routed.aggregateId} does not exist`) });
        continue;
      }
      const id = routed.commandId;
      const seen = id === undefined ? undefined : (known.get(id) ?? inThisRound.get(id));
      if (seen) {
        if (seen.requestDigest !== undefined && p.digest !== undefined && seen.requestDigest !== p.digest) {
          decisions.push({ kind: 'failed', p, error: new CommandIdReusedError(id!) });
        } else {
          decisions.push({ kind: 'duplicate', p, versions: seen });
        }
        continue;
      }
      if (routed.expectedVersion !== undefined && routed.expectedVersion !== version) {
        decisions.push({ kind: 'failed', p, error: new VersionConflictError(p.streamId, version, routed.expectedVersion) });
        continue;
      }
      try {
        const events = decider.decide({ ...routed.command, context: { at } }, state) as { type: string; data: unknown }[];
        if (events.length === 0) throw new Error(`${decider.aggregateType} decided no events for ${routed.command.type}`);
        for (const e of events) state = decider.evolve(state, e);
        // Events record the stream's tenant (a `*` caller may act on another tenant's stream).
        const streamTenant = tenant ?? p.identity.tenant;
        const metadata = p.metadata.tenant === streamTenant ? p.metadata : { ...p.metadata, tenant: streamTenant };
        const newEvents = events.map((e) => ({
          type: e.type,
          schemaVersion: decider.eventSchemaVersions[e.type] ?? 1,
          data: e.data,
          metadata,
        }));
        const d = { kind: 'append' as const, p, events: newEvents, firstVersion: version + 1 };
        version += events.length;
        if (id !== undefined) inThisRound.set(id, { firstVersion: d.firstVersion, lastVersion: version, ...(p.digest ? { requestDigest: p.digest } : {}) });
        decisions.push(d);
        toAppend.push(d);
        tenant ??= p.identity.tenant;
      } catch (error) {
        decisions.push({ kind: 'failed', p, error });
      }
    }
    return { state, decisions, toAppend, tenant };
  }

  private entryFor(
    streamId: string,
    expectedVersion: number,
    toAppend: Extract<Decision, { kind: 'append' }>[],
    tenant: string | undefined,
    events: readonly NewEvent[] | undefined,
  ): AppendEntry {
    const first = toAppend[0]!.p.routed;
    const traced = this.deps.tracer ? toAppend.flatMap((d) => (d.p.span?.isRecording() ? [d.p.span.spanContext()] : [])) : [];
    return {
      ...(traced.length > 0 ? { trace: { parent: traced[0]!, links: traced } } : {}),
      streamId,
      aggregateType: first.aggregateType,
      aggregateId: first.aggregateId,
      tenant: tenant ?? '',
      expectedVersion,
      events: events ?? toAppend.flatMap((d) => d.events),
      commands: toAppend.map((d) => ({ commandId: d.p.routed.commandId, requestDigest: d.p.digest, eventCount: d.events.length })),
    };
  }

  /**
   * The tenant of an existing stream. It never changes (a move copies it), so
   * it is cached for good; a bounded map, oldest entries first out.
   */
  private async tenantOf(streamId: string): Promise<string | undefined> {
    const cached = this.tenants.get(streamId);
    if (cached !== undefined) return cached;
    const tenant = await this.deps.reader.streamTenant(streamId);
    if (tenant !== undefined) this.rememberTenant(streamId, tenant);
    return tenant;
  }

  private rememberTenant(streamId: string, tenant: string): void {
    this.tenants.set(streamId, tenant);
    if (this.tenants.size > TENANT_CACHE_ENTRIES) this.tenants.delete(this.tenants.keys().next().value!);
  }

  /** Answers every command of a decided round (after its append, if any). */
  private async settle(
    streamId: string,
    decider: AnyDecider,
    decisions: Decision[],
    appended: { positions: readonly bigint[]; recordedAt: Date; first: number } | undefined,
  ): Promise<void> {
    for (const d of decisions) {
      if (d.kind === 'failed') {
        if (!(d.error instanceof ShardwriteError)) this.deps.logger.error({ err: d.error, streamId, ...traceFields(d.p.span) }, 'decider threw an unexpected error');
        d.p.reject(d.error);
      } else if (d.kind === 'append' && appended) {
        const events = d.events.map((e, i) => {
          const version = d.firstVersion + i;
          return {
            streamId,
            version,
            type: e.type,
            schemaVersion: e.schemaVersion,
            data: e.data,
            metadata: e.metadata,
            position: appended.positions[version - appended.first] ?? 0n,
            recordedAt: appended.recordedAt,
          };
        });
        d.p.resolve({ streamId, version: d.firstVersion + d.events.length - 1, events, duplicate: false });
      }
    }
    // Duplicates last: they read the original events, which may be in this very append.
    for (const d of decisions) {
      if (d.kind !== 'duplicate') continue;
      try {
        // Only the original command's events: a long stream is not read to its end for a retry.
        let stored = await this.deps.reader.readStream(streamId, d.versions.firstVersion, d.versions.lastVersion);
        if (this.deps.personalData) stored = await this.deps.personalData.reveal(decider, stored);
        const events = stored.map((e) => this.deps.loader.upcastEvent(decider, e));
        d.p.resolve({ streamId, version: d.versions.lastVersion, events, duplicate: true });
      } catch (err) {
        d.p.reject(err);
      }
    }
  }
}

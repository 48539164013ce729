/**
 * The command pipeline of a shard (ARCHITECTURE.md, "the way a command
 * travels"): validate → authorize → ownership → mailbox → load → decide →
 * append. Each stage is timed. Commands for one stream run one after another
 * in its mailbox; the commands queued there are decided together against the
 * evolving state and appended as one batch entry, each keeping its own
 * outcome. Commands for different streams run concurrently and meet again in
 * the shard's single group-commit writer.
 *
 * A batch runs in rounds (`round`); each round ends in a tagged `RoundOutcome`,
 * `nextStep` (round.ts) says what follows it, and `answer` is the one place a
 * command is answered.
 */
import type { AnyDecider } from '../domain/decider.js';
import type { CommandSpec, RoutedCommand } from '../domain/module.js';
import { ConcurrencyError, DeadlineExceededError, DuplicateCommandError, OverloadedError, ShardwriteError, StoreUnavailableError, StreamMovingError, WrongShardError, asError } from '../errors.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { stageEvents, type Tracer } from '../observability/tracing.js';
import type { Appender, EventReader, NewEvent } from '../store/types.js';
import type { Authorizer } from '../auth/authorize.js';
import type { Identity } from '../auth/identity.js';
import { sleep, withTimeout } from './backoff.js';
import { auditMetadata, checkTraceIds, requestDigest, type CallContext, type CommandOutcome } from './call.js';
import { decideRound, entryFor, type DecidedRound, type Pending, type RoundStart } from './decide-round.js';
import { InFlightBudget } from './in-flight.js';
import type { AggregateLoader, LoadedAggregate } from './loader.js';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from './options.js';
import type { Ownership } from './ownership.js';
import { answer } from './answer.js';
import { expireOverdue, nextStep, type MoveWait, type Retry, type RoundOutcome } from './round.js';
import { knownCommands, StreamTenants } from './stream-facts.js';
import { SubjectErasedError, type PersonalData } from '../privacy/personal-data.js';

export { checkTraceIds, MAX_TRACE_ID_LENGTH, requestDigest, type CallContext, type CommandOutcome } from './call.js';
export { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from './options.js';

/** Time left to the caller after a move wait, for the router's retry at the new owner. */
const MOVE_ANSWER_MARGIN_MS = 250;

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

interface Mailbox {
  readonly decider: AnyDecider;
  readonly queue: Pending[];
  running: boolean;
}

/** The stream as a round reads it: loaded (or assumed new), its tenant and its known command ids. */
interface ReadStream {
  readonly loaded: LoadedAggregate;
  readonly start: RoundStart;
}

export class CommandPipeline {
  private readonly options: PipelineOptions;
  private readonly mailboxes = new Map<string, Mailbox>();
  private readonly tenants: StreamTenants;
  private readonly budget: InFlightBudget;
  private readonly now: () => number;

  constructor(
    private readonly deps: PipelineDeps,
    options: Partial<PipelineOptions> = {},
  ) {
    this.options = { ...DEFAULT_PIPELINE_OPTIONS, ...options };
    this.now = deps.now ?? Date.now;
    this.tenants = new StreamTenants(deps.reader);
    this.budget = new InFlightBudget(this.options, deps.metrics.inFlight);
  }

  /** Commands accepted and not yet answered. */
  get pending(): number {
    return this.budget.held;
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
    if (span) {
      span.setAttribute('shardwrite.command', routed.command.type);
      span.setAttribute('shardwrite.aggregate_type', routed.aggregateType);
      span.addEvent('validated');
    }
    const identity = metrics.timeSync('authorize', () => this.deps.authorizer.authorize(ctx.identity, routed.aggregateType));
    span?.addEvent('authorized');
    // A lookup in the ring: a refusal (WRONG_SHARD) ends the span with its reason, a pass needs no event.
    metrics.timeSync('ownership', () => this.deps.ownership.assertOwner(routed.aggregateId));
    if (ctx.deadline !== undefined && ctx.deadline <= this.now()) throw new DeadlineExceededError();
    return this.enqueue(decider, routed, ctx, identity);
  }

  /** Waits until every accepted command has its outcome (graceful shutdown). */
  async drain(pollMs = 10): Promise<void> {
    while (this.budget.held > 0) await sleep(pollMs);
  }

  private enqueue(decider: AnyDecider, routed: RoutedCommand, ctx: CallContext, identity: Identity): Promise<CommandOutcome> {
    const streamId = `${routed.aggregateType}-${routed.aggregateId}`;
    let mailbox = this.mailboxes.get(streamId);
    // Refuse before doing any work, so memory stays bounded whatever callers do.
    if (this.budget.full || (mailbox && mailbox.queue.length >= this.options.maxQueuedPerStream)) {
      throw new OverloadedError(this.options.overloadRetryAfterMs);
    }
    const release = this.budget.take(ctx.caller);
    if (!mailbox) {
      mailbox = { decider, queue: [], running: false };
      this.mailboxes.set(streamId, mailbox);
    }
    const digest = routed.commandId ? requestDigest(routed) : undefined;
    const metadata = auditMetadata(routed, identity, ctx, digest);
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
          release();
          resolve(o);
        },
        reject: (e) => {
          release();
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
          const attributes = { 'shardwrite.mailbox.batch': batch.length };
          for (const p of batch) if (p.span) stageEvents([p.span], 'queue', p.spanQueuedAt, now, attributes);
        }
        try {
          await this.process(streamId, mailbox.decider, batch);
        } catch (err) {
          // process() answers every command itself; this is a last line of defence (a command
          // already answered keeps its answer).
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
   * Decides and appends one batch of a stream's commands, in rounds until
   * every command is answered: each round ends in a `RoundOutcome`, `nextStep`
   * says which commands it answers and which go on to the next round, and
   * `answer` answers them. Nothing else settles a command.
   */
  private async process(streamId: string, decider: AnyDecider, batch: Pending[]): Promise<void> {
    const { metrics } = this.deps;
    const started = this.now();
    // A stream not in memory is first assumed not to exist: most cold commands create one (a
    // new order), and appending at version 0 proves it or refutes it without a read. Refuted,
    // the round is decided again on the stream as loaded, without counting an attempt or backing off.
    let assumed = this.options.assumeNewStreams ? this.deps.loader.assumeNew(streamId, decider) : undefined;
    let next: Retry | undefined = { live: batch, attempt: 0, expire: true };
    while (next) {
      const { attempt } = next;
      let { live } = next;
      if (next.expire) {
        const overdue = expireOverdue(live, this.now());
        await answer(this.deps, streamId, decider, overdue.answers);
        live = overdue.live;
      }
      if (live.length === 0) return;
      const outcome = await this.round(streamId, decider, live, attempt, assumed);
      assumed = undefined;
      const step = nextStep(outcome, live, { attempt, elapsedMs: this.now() - started }, this.options);
      if (outcome.kind === 'conflict') {
        metrics.conflicts.inc();
        if (!step.retry) metrics.retries.inc({ outcome: 'exhausted' });
      }
      if (step.appended && attempt > 0) metrics.retries.inc({ outcome: 'succeeded' });
      await answer(this.deps, streamId, decider, step.answers, step.appended);
      if (step.appended) this.deps.afterAppend?.(streamId, decider, step.appended.version, step.appended.state);
      next = step.retry;
      if (next?.backoffMs !== undefined) {
        if (this.deps.tracer) for (const p of live) p.span?.addEvent('conflict retry', { 'shardwrite.attempt': next.attempt, 'shardwrite.backoff_ms': next.backoffMs });
        await sleep(next.backoffMs);
      }
    }
  }

  /** One round: read the stream (unless assumed new), decide, seal, append. Ends in an outcome, never in a throw from the store. */
  private async round(streamId: string, decider: AnyDecider, live: Pending[], attempt: number, assumed: LoadedAggregate | undefined): Promise<RoundOutcome> {
    const { metrics, tracer } = this.deps;
    const read = await this.read(streamId, decider, live, attempt, assumed);
    if ('kind' in read) return read;
    const stageStart = tracer ? performance.now() : 0;
    const round = await metrics.time('decide', () => decideRound(decider, read.start, live, new Date(this.now()).toISOString()));
    if (tracer)
      stageEvents(
        live.map((p) => p.span),
        'decide',
        stageStart,
        performance.now(),
        { 'shardwrite.attempt': attempt, 'shardwrite.decided.commands': live.length },
      );
    if (assumed && round.decisions.some((d) => d.kind !== 'append')) return { kind: 'refuted' };
    if (round.toAppend.length === 0) return { kind: 'done', decisions: round.decisions };
    const sealed = await this.seal(streamId, decider, round, assumed !== undefined);
    if ('kind' in sealed) return sealed;
    return this.append(streamId, read.loaded, round, sealed.events, live, attempt, assumed !== undefined);
  }

  /** The stream a round decides on: loaded (or assumed new), with its tenant and the round's known command ids. */
  private async read(streamId: string, decider: AnyDecider, live: Pending[], attempt: number, assumed: LoadedAggregate | undefined): Promise<ReadStream | RoundOutcome> {
    const { metrics, loader, tracer } = this.deps;
    // The stream's tenant is read beside the load, not after it (an extra round trip only for
    // a stream whose tenant is not remembered yet: the first command after a start or a move).
    const tenantLookup = assumed ? undefined : this.tenants.of(streamId).catch((err: unknown) => err as Error);
    const stageStart = tracer ? performance.now() : 0;
    const loaded =
      assumed ??
      (await metrics
        .time('load', () => withTimeout(loader.load(streamId, decider), this.options.loadTimeoutMs, () => new StoreUnavailableError('loading the aggregate timed out')))
        .catch((err: unknown) => err as Error));
    if (tracer) {
      const attributes =
        loaded instanceof Error
          ? { 'error.type': loaded.name, 'shardwrite.attempt': attempt }
          : { 'shardwrite.load.tier': loaded.tier, 'shardwrite.load.replayed_events': loaded.replayed, 'shardwrite.attempt': attempt };
      stageEvents(
        live.map((p) => p.span),
        'load',
        stageStart,
        performance.now(),
        attributes,
      );
    }
    if (loaded instanceof Error) return { kind: 'unread', error: loaded };
    const tenant = await (loaded.version === 0 ? this.ownerTenant(streamId, decider) : (tenantLookup ?? this.tenants.of(streamId))).catch((err: unknown) => err as Error);
    if (tenant instanceof Error) return { kind: 'unread', error: tenant };
    const known = await knownCommands(this.deps.reader, streamId, loaded.commandIds, live);
    if (known instanceof Error) return { kind: 'unread', error: known };
    return { loaded, start: { state: loaded.state, version: loaded.version, known, tenant } };
  }

  /** The tenant a new stream takes from the stream that owns it (`Decider.tenantFrom`); undefined: the creating command's. */
  private async ownerTenant(streamId: string, decider: AnyDecider): Promise<string | undefined> {
    if (decider.tenantFrom === undefined) return undefined;
    return this.tenants.of(`${decider.tenantFrom}-${streamId.slice(decider.aggregateType.length + 1)}`);
  }

  /**
   * Personal data leaves the process only sealed: the events to store (as
   * decided without a `PersonalData`), or how the round ends instead. A command
   * that would record an erased subject's is refused, and the round decided
   * again without it (its state changed).
   */
  private async seal(streamId: string, decider: AnyDecider, round: DecidedRound, assumed: boolean): Promise<{ events?: NewEvent[] } | RoundOutcome> {
    if (!this.deps.personalData) return {};
    const sealed = await this.deps.personalData.seal(streamId, decider, round.toAppend).catch((err: unknown) => err as Error);
    if (sealed instanceof Error) return { kind: 'unknown', error: sealed, decisions: round.decisions };
    // Decided as a new stream without reading it: the stream may exist and hold this very
    // command (a retry answers `duplicate`, I4, erased or not), so read it and decide again.
    if (assumed && sealed.refused.some((subject) => subject !== undefined)) return { kind: 'refuted' };
    const refused = new Map<Pending, SubjectErasedError>();
    round.toAppend.forEach((d, i) => {
      const subject = sealed.refused[i];
      if (subject !== undefined) refused.set(d.p, new SubjectErasedError(subject));
    });
    if (refused.size > 0) return { kind: 'erased', refused };
    return { events: sealed.stored.flat() };
  }

  /** Appends the round's entry at the loaded version; on success the owner cache holds the decided state. */
  private async append(streamId: string, loaded: LoadedAggregate, round: DecidedRound, events: NewEvent[] | undefined, live: Pending[], attempt: number, assumed: boolean): Promise<RoundOutcome> {
    const { metrics, loader, tracer } = this.deps;
    const entry = entryFor(streamId, loaded.version, round.toAppend, round.tenant, events, tracer !== undefined);
    const stageStart = tracer ? performance.now() : 0;
    try {
      const result = await metrics
        .time('append', () => this.deps.appender.append(entry))
        .finally(() => {
          if (tracer)
            stageEvents(
              round.toAppend.map((d) => d.p.span),
              'append',
              stageStart,
              performance.now(),
              { 'shardwrite.attempt': attempt },
            );
        });
      const commandIds = loaded.commandIds ? new Map(loaded.commandIds) : undefined;
      for (const d of round.toAppend) {
        const id = d.p.routed.commandId;
        if (id && commandIds) commandIds.set(id, { firstVersion: d.firstVersion, lastVersion: d.firstVersion + d.events.length - 1, ...(d.p.digest ? { requestDigest: d.p.digest } : {}) });
      }
      loader.remember(streamId, { state: round.state, version: result.version, commandIds, snapshotVersion: loaded.snapshotVersion });
      if (round.tenant !== undefined) this.tenants.remember(streamId, round.tenant);
      const appended = { positions: result.positions, recordedAt: result.recordedAt, first: loaded.version + 1, version: result.version, state: round.state };
      return { kind: 'done', decisions: round.decisions, appended };
    } catch (err) {
      loader.forget(streamId);
      const conflict = err instanceof ConcurrencyError || err instanceof DuplicateCommandError;
      if (assumed && conflict) return { kind: 'refuted' };
      if (tracer) for (const p of live) p.span?.addEvent('append refused', { 'error.type': (err as Error).name ?? 'Error', 'shardwrite.attempt': attempt });
      if (err instanceof StreamMovingError) return { kind: 'moving', error: err, wait: await this.awaitMove(err, live), decisions: round.decisions };
      if (err instanceof WrongShardError) return { kind: 'fenced', error: this.fence(err) };
      // Not a conflict: an unknown commit outcome or a dead store; the caller retries with its command id.
      if (!conflict) return { kind: 'unknown', error: err, decisions: round.decisions };
      return { kind: 'conflict', error: err, loadedVersion: loaded.version };
    }
  }

  /** Tells the ownership the store was fenced at a newer epoch; what it throws, if anything, is the answer. */
  private fence(err: WrongShardError): unknown {
    try {
      this.deps.ownership.onFenced(err.epoch);
      return err;
    } catch (thrown) {
      return thrown;
    }
  }

  /**
   * After the store refused an append because its stream is moving: `retry`
   * when the store is sealed for a move this shard had not heard of (the ring
   * was re-read; the stream may not be moving at all), `moved` when the new
   * ring arrived within the wait (answer WRONG_SHARD), `moving` otherwise.
   */
  private async awaitMove(err: StreamMovingError, live: readonly Pending[]): Promise<MoveWait> {
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
}

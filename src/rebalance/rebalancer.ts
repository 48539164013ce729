/**
 * Adds a shard to the ring or takes one out while the cluster serves:
 * moves exactly the streams whose owner changes, loses none of their events,
 * command-id records or snapshots, then switches the ring. Driven by
 * `shardwrite ring add | remove` (cli/ring.ts); the plan lives in the ring
 * database (`move-store.ts`), so a move interrupted anywhere — the tool, a
 * shard or a router killed — is finished by running the same command again.
 *
 * How one move goes (ARCHITECTURE.md, "Ring and rebalancing"; the phases are
 * `MOVE_PHASES`):
 *
 * 1. The plan (target ring, next epoch) is recorded and announced on the ring
 *    channel: every shard learns which of its aggregates the target ring
 *    gives away, and from then on tells its store so with every batch.
 * 2. `precopy`: each moving stream is copied to its new owner — events,
 *    command-id records (so idempotency survives the move), latest snapshot,
 *    streams row — while its old owner still serves it. Copies are
 *    idempotent (a resumed pass starts after what the new owner holds).
 * 3. `seal`: each old owner's store gets the move fence (`moving_epoch`): its
 *    writer appends only to streams that stay, so no moving stream — not even
 *    one created a moment ago — changes any more, in one statement per store.
 *    From here until the switch, commands for moving streams wait briefly at
 *    their old owner, then get WRONG_SHARD (which the router retries at the
 *    new owner) or a retryable UNAVAILABLE / STREAM_MOVING. Other streams
 *    never notice.
 * 4. `delta`: what was appended between the last pre-copy pass and the seal
 *    is copied — found by event position, not by listing every stream — and
 *    checked at the new owners (same version, events 1..n). The pre-copy
 *    already checked everything else, so the sealed window stays short.
 * 5. `publish`: the target ring is published (compare-and-set); routers and
 *    shards converge by NOTIFY. A new shard must answer health checks first.
 * 6. `fence`: every shard store's fence reaches the new epoch (the shards
 *    raise it when they hear of the epoch; stragglers are raised here), so
 *    no process still acting on the old ring can write anywhere.
 * 7. `cleanup`: the old copies are marked `moved_at_epoch` at their old
 *    owners, then deleted, each only after its new owner was checked to hold
 *    it completely.
 */
import { asError } from '../errors.js';
import { addTo } from './group-by.js';
import { PgRingStore, RingConflictError, RingView, type RegisteredStore, type RingDocument } from '../ring/index.js';
import { StoreIdentityError, identityHealthService } from '../store/store-identity.js';
import { abandonCopies, type AbortFigures } from './abort.js';
import { rebindStore, type RebindResult } from './rebind.js';
import type * as grpc from '@grpc/grpc-js';
import { checkServing } from './health.js';
import { redactDatabaseUrl, withCredentials, type StoreCredentials } from '../store/database-url.js';
import { NO_FIGURES, PgMoveStore, type MoveFigures, type MoveRecord } from './move-store.js';
import {
  MOVE_PHASES,
  RebalanceError,
  commandOf,
  copyBatches,
  describeMove,
  copyItem,
  decide,
  type CopyItem,
  type MovePhase,
  type MoveRequest,
} from './plan.js';
import type { MoveProgress } from './progress.js';
import { ShardDb, type CopyPayload, type ListedStream } from './shard-db.js';

/** The event-store migration that added the move fence; every store taking part must have it. */
const MOVE_FENCE_SCHEMA = 3;

export interface RebalancerOptions {
  /** The ring database. */
  readonly ringDatabaseUrl: string;
  /** Streams per copy transaction; default 500. */
  readonly batchStreams?: number;
  /** Events per copy transaction (a longer stream goes alone); default 5000. */
  readonly batchEvents?: number;
  /** Pause between two copy batches from one old owner, to spare a busy cluster; default 0. */
  readonly pauseMs?: number;
  /** Streams sealed, or deleted, per statement; default 1000. */
  readonly statementStreams?: number;
  /** How long `fence` lets the shards raise their fences themselves before it does; default 10,000 ms. */
  readonly fenceWaitMs?: number;
  /** Least time between recording a plan and sealing, so every shard has read it; default 1000 ms. */
  readonly planNoticeMs?: number;
  /** Deadline of the new shard's health check; default 3000 ms. */
  readonly healthTimeoutMs?: number;
  /** How the health check reaches a shard: TLS with the rebalancer's certificate, or plaintext (the default) in insecure mode. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Store URLs to use (and register, without their passwords) instead of what the shards registered, by shard id. */
  readonly databaseUrls?: Readonly<Record<string, string>>;
  /**
   * The rebalancer's own database user and password, put into every store URL
   * read from the ring database (which holds no passwords); default: none (the
   * URL's user, and PGPASSWORD or ~/.pgpass as node-postgres finds them).
   */
  readonly storeCredentials?: StoreCredentials;
  /** Called after every step with where the move stands. */
  readonly onProgress?: (progress: MoveProgress) => void;
  /** Stops the move between two steps (it resumes from there when run again). */
  readonly signal?: AbortSignal;
}

/** What a run did. */
export interface MoveResult {
  /** `already-done`: the ring already was what the request asked for; nothing changed. */
  readonly outcome: 'done' | 'already-done';
  /** The ring's epoch afterwards. */
  readonly epoch: number;
  /** Whether this run resumed a move an earlier run had started. */
  readonly resumed: boolean;
  /** The move's figures over all its runs (zero for `already-done`). */
  readonly figures: MoveFigures;
  /** How long this run took. */
  readonly durationMs: number;
}

/** What `abort` did. */
export type AbortResult =
  /** No move was in progress; nothing changed. */
  | { readonly outcome: 'nothing'; readonly epoch: number; readonly durationMs: number }
  /** The move is abandoned; `epoch` (its target epoch) now carries the old membership. */
  | {
      readonly outcome: 'aborted';
      readonly epoch: number;
      readonly move: MoveRecord;
      readonly abortedPhase: MovePhase;
      readonly figures: AbortFigures;
      readonly durationMs: number;
    };

/** Phases reached only after the move published its ring: from there only finishing it is safe. */
const SWITCHED_PHASES: ReadonlySet<MovePhase> = new Set(['fence', 'cleanup', 'done']);

/**
 * `ring abort` on a move that already switched the ring: its new owners serve
 * (and may have appended to) the moved streams, so taking them back is a move
 * of its own.
 */
export class MoveSwitchedError extends RebalanceError {
  constructor(
    readonly move: MoveRecord,
    readonly currentEpoch: number,
    removedAddress: string | undefined,
  ) {
    const undo =
      move.kind === 'add'
        ? `shardwrite ring remove ${move.shardId}`
        : `shardwrite ring add ${move.shardId} --address ${removedAddress ?? '<host:port>'}`;
    super(
      `the move (${describeMove(move)}, phase ${move.phase}) already switched the ring to epoch ${move.targetEpoch}: ` +
        `its streams are served by their new owners, so it cannot be aborted. Finish it with \`${commandOf(move)}\`, ` +
        `then undo it with \`${undo}\``,
    );
    this.name = 'MoveSwitchedError';
  }
}

/** What this run knows of one old owner's moving streams (lost with the process; a resumed run lists again). */
interface SourceState {
  /** Events up to this position were looked at: later changes are found by position (I9). */
  position: bigint;
  /** The moving streams, by id, with their new owner and the version last seen. */
  readonly moving: Map<string, ListedStream & { readonly owner: string }>;
  /** What each moving stream's new owner holds. */
  readonly held: Map<string, { version: number; sealed: boolean }>;
  /** Streams on this shard before the move (for the moved share). */
  seen: number;
}

interface Context {
  readonly move: MoveRecord;
  readonly moves: PgMoveStore;
  /** Each participant's store id, checked against its store and its registration. */
  readonly identities: ReadonlyMap<string, string>;
  readonly view: RingView;
  /** The ring before the move (for hashing only: a removed shard's address is not known). */
  readonly base: RingView;
  /** Every shard taking part: the old ring's and the new ring's. */
  readonly dbs: ReadonlyMap<string, ShardDb>;
  /** The shards whose streams may move away (every participant but an added shard). */
  readonly sources: readonly ShardDb[];
  /** Filled by the first full pass of this run. */
  readonly state: Map<ShardDb, SourceState>;
  figures: MoveFigures;
  /** Streams copied and time spent copying in this run, for the rate. */
  copiedThisRun: number;
  copyMs: number;
  phase: MovePhase;
  phaseStarted: number;
  lastSaved: number;
}

const DEFAULTS = {
  batchStreams: 500,
  batchEvents: 5000,
  pauseMs: 0,
  statementStreams: 1000,
  fenceWaitMs: 10_000,
  planNoticeMs: 1000,
  healthTimeoutMs: 3000,
};

/** Runs moves; one instance per CLI invocation is enough. */
export class Rebalancer {
  readonly #o: Required<Omit<RebalancerOptions, 'databaseUrls' | 'onProgress' | 'signal' | 'credentials' | 'storeCredentials'>> & RebalancerOptions;
  #started = 0;

  constructor(options: RebalancerOptions) {
    this.#o = { ...DEFAULTS, ...options };
  }

  /**
   * Carries out `request`: starts the move, resumes the one in progress when
   * it is the same request, or does nothing when the ring already is as asked.
   *
   * @throws MoveInProgressError when a different move is in progress;
   *   RebalanceError when the request cannot be carried out (a shard is not
   *   registered or not serving, another rebalancer runs, the ring changed
   *   under the move, …) — after a failure mid-move, running the same request
   *   again resumes it; the `signal`'s reason when aborted.
   */
  async run(request: MoveRequest): Promise<MoveResult> {
    return this.#locked(async ({ ringStore, moves, dbs, current }) => {
      if (!current) throw new RebalanceError('the ring database has no ring yet: start the cluster first');
      const active = await moves.active();
      const decision = decide(current, active, request);
      if (decision.action === 'done') {
        return { outcome: 'already-done', epoch: decision.epoch, resumed: false, figures: NO_FIGURES, durationMs: this.#elapsed() };
      }
      for (const [id, url] of Object.entries(this.#o.databaseUrls ?? {})) await this.#registerGiven(ringStore, id, url);
      const target = decision.action === 'start' ? decision.target : decision.move.target;
      const participants = participantsOf(target, request);
      const stores = await this.#open(ringStore, participants, dbs);
      await this.#checkSchemas(dbs);
      // Before anything is copied, sealed or published: every store is the one its shard claimed and registered.
      const identities = await checkIdentities(dbs, stores);

      let move: MoveRecord;
      if (decision.action === 'start') {
        if (request.kind === 'add') await this.#checkNewShard(request.shardId, request.address, dbs.get(request.shardId)!, identities.get(request.shardId)!);
        move = await moves.create({ kind: request.kind, shardId: request.shardId, target });
      } else {
        move = active!;
      }
      const ctx: Context = {
        move,
        moves,
        identities,
        view: new RingView(move.target),
        base: new RingView(baseRing(move)),
        dbs,
        sources: participants.filter((id) => !(request.kind === 'add' && id === request.shardId)).map((id) => dbs.get(id)!),
        state: new Map(),
        figures: move.figures,
        copiedThisRun: 0,
        copyMs: 0,
        phase: move.phase,
        phaseStarted: performance.now(),
        lastSaved: 0,
      };
      await this.#execute(ctx, ringStore, moves);
      return { outcome: 'done', epoch: move.targetEpoch, resumed: decision.action === 'resume', figures: ctx.figures, durationMs: this.#elapsed() };
    });
  }

  /**
   * Abandons the unfinished move, if any, as long as it has not switched the
   * ring (see abort.ts): its streams stay with their old owners, its seals
   * are lifted, its copies removed, and the old membership is published at
   * the move's target epoch. Safe in any phase before the switch-over, and
   * idempotent: an abort stopped half-way is finished by running it again.
   *
   * @throws MoveSwitchedError when the move already published its ring (it
   *   must be finished, then undone by the opposite move); RebalanceError
   *   when a store cannot be checked or a copy's old owner does not hold its
   *   stream (nothing further is touched); the lock's RebalanceError while
   *   another rebalancer runs.
   */
  async abort(): Promise<AbortResult> {
    return this.#locked(async ({ ringStore, moves, dbs, current }) => {
      if (!current) throw new RebalanceError('the ring database has no ring yet: there is no move to abort');
      const move = await moves.active();
      if (!move) return { outcome: 'nothing', epoch: current.epoch, durationMs: this.#elapsed() };
      const from = move.abortedPhase ?? move.phase;
      if (current.epoch >= move.targetEpoch || SWITCHED_PHASES.has(from)) {
        throw new MoveSwitchedError(move, current.epoch, (await ringStore.shardAddresses()).get(move.shardId));
      }
      const request: MoveRequest =
        move.kind === 'add'
          ? { kind: 'add', shardId: move.shardId, address: move.target.shards.find((s) => s.id === move.shardId)!.address }
          : { kind: 'remove', shardId: move.shardId };
      const stores = await this.#open(ringStore, participantsOf(move.target, request), dbs);
      await this.#checkSchemas(dbs);
      await checkIdentities(dbs, stores);
      await moves.rewindForAbort(move.targetEpoch);
      this.#o.onProgress?.({
        targetEpoch: move.targetEpoch, kind: move.kind, shardId: move.shardId, phase: 'precopy', figures: move.figures,
        elapsedMs: this.#elapsed(), streamsPerSecond: undefined, etaMs: undefined, note: `aborting (it stood in phase ${from})`,
      });
      const figures = await abandonCopies({
        targetEpoch: move.targetEpoch,
        base: new RingView(baseRing(move)),
        target: new RingView(move.target),
        dbs,
        statementStreams: this.#o.statementStreams,
        ...(this.#o.signal ? { signal: this.#o.signal } : {}),
      });
      await moves.abandon(move.targetEpoch, { epoch: move.targetEpoch, shards: current.shards }, move.figures);
      return { outcome: 'aborted', epoch: move.targetEpoch, move, abortedPhase: from, figures, durationMs: this.#elapsed() };
    });
  }

  /**
   * Binds `shardId` to a new, empty store at `databaseUrl` because its
   * registered store is lost (see rebind.ts), holding the rebalancer lock so
   * no move runs meanwhile.
   *
   * @throws RebalanceError when a move is in progress, the old store is not
   *   proven lost, or the new store is not an empty store of no other shard;
   *   the lock's RebalanceError while another rebalancer runs.
   */
  async rebind(shardId: string, databaseUrl: string): Promise<RebindResult> {
    return this.#locked(async ({ ringStore, moves }) => {
      const active = await moves.active();
      if (active) throw new RebalanceError(`a move is in progress (${describeMove(active)} → epoch ${active.targetEpoch}): finish it or abort it before rebinding a store`);
      return rebindStore({ shardId, databaseUrl, ringStore, ...(this.#o.storeCredentials ? { storeCredentials: this.#o.storeCredentials } : {}) });
    });
  }

  /**
   * Runs `fn` holding the rebalancer lock, with the ring and move stores open
   * (the ring migrated) and the ring as it stands; closes every store `fn`
   * opened into `dbs`, and the lock, however it ends.
   */
  async #locked<T>(
    fn: (session: { ringStore: PgRingStore; moves: PgMoveStore; dbs: Map<string, ShardDb>; current: RingDocument | undefined }) => Promise<T>,
  ): Promise<T> {
    this.#started = performance.now();
    const ringStore = new PgRingStore({ connectionString: this.#o.ringDatabaseUrl });
    const moves = new PgMoveStore(this.#o.ringDatabaseUrl);
    const dbs = new Map<string, ShardDb>();
    let lock: { release(): Promise<void> } | undefined;
    try {
      await ringStore.migrate();
      lock = await moves.lock();
      return await fn({ ringStore, moves, dbs, current: await ringStore.current() });
    } finally {
      await lock?.release();
      await Promise.all([...dbs.values()].map((db) => db.close()));
      await moves.close();
      await ringStore.close();
    }
  }

  async #execute(ctx: Context, ringStore: PgRingStore, moves: PgMoveStore): Promise<void> {
    const { move } = ctx;
    for (let i = MOVE_PHASES.indexOf(move.phase); i < MOVE_PHASES.length - 1; i++) {
      const phase = MOVE_PHASES[i]!;
      ctx.phase = phase;
      ctx.phaseStarted = performance.now();
      this.#report(ctx);
      // Between two phases is a step boundary too: a stop asked for here leaves the move in this phase.
      this.#o.signal?.throwIfAborted();
      switch (phase) {
        case 'precopy':
          await this.#precopy(ctx);
          break;
        case 'seal':
          await this.#seal(ctx);
          break;
        case 'delta':
          await this.#delta(ctx);
          break;
        case 'publish':
          await this.#publish(ctx, ringStore);
          break;
        case 'fence':
          await this.#fence(ctx);
          break;
        case 'cleanup':
          await this.#cleanup(ctx);
          break;
        case 'done':
          break;
      }
      const took = performance.now() - ctx.phaseStarted;
      ctx.figures = { ...ctx.figures, phaseMs: { ...ctx.figures.phaseMs, [phase]: (ctx.figures.phaseMs[phase] ?? 0) + Math.round(took) } };
      const next = MOVE_PHASES[i + 1]!;
      if (next === 'done') await moves.finish(move.targetEpoch, ctx.figures);
      else await moves.save(move.targetEpoch, ctx.figures, next);
    }
    ctx.phase = 'done';
    this.#report(ctx);
  }

  /**
   * Copies while the old owners serve: a full pass, then passes over what
   * changed meanwhile while there is much of it, then a check of every copy,
   * so the sealed window that follows has only the last changes to copy.
   */
  async #precopy(ctx: Context): Promise<void> {
    let copied = await this.#copyPass(ctx, 'full');
    for (let pass = 0; pass < 2 && copied.events >= 1000; pass++) copied = await this.#copyPass(ctx, 'changes');
    const problems = await this.#verify(ctx, undefined);
    if (problems.length > 0) throw new RebalanceError(`copies at the new owners are not what was copied: ${problems.slice(0, 5).join('; ')}`);
  }

  /**
   * Seals every moving stream at once: each old owner's store gets the move
   * fence, and from then on appends only to streams that stay (existing or
   * new). The sealed window lasts until `publish`.
   */
  async #seal(ctx: Context): Promise<void> {
    const { move } = ctx;
    // The shards learn the plan by notification (or their next poll); a store sealed before its
    // shard knows the plan would refuse that shard's every append until it re-reads the ring.
    const notice = this.#o.planNoticeMs - (move.ageMs + (performance.now() - this.#started));
    if (notice > 0) {
      this.#report(ctx, 'giving every shard time to read the plan');
      await sleep(notice, this.#o.signal);
    }
    await Promise.all(ctx.sources.map((db) => db.setMoveFence(move.targetEpoch)));
    ctx.figures = { ...ctx.figures, streamsSealed: ctx.figures.streamsTotal };
  }

  /**
   * Copies what changed since the last pass — the last changes: nothing
   * moving changes any more — and checks it. A resumed run, which knows
   * nothing yet, and a second attempt list and check everything.
   */
  async #delta(ctx: Context): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const incremental = attempt === 1 && ctx.state.size === ctx.sources.length;
      const copied = await this.#copyPass(ctx, incremental ? 'changes' : 'full');
      ctx.figures = { ...ctx.figures, streamsSealed: ctx.figures.streamsTotal };
      const problems = await this.#verify(ctx, incremental ? copied.streams : undefined);
      if (problems.length === 0 && this.#complete(ctx)) return;
      if (attempt === 3) {
        throw new RebalanceError(`moving streams are not complete at their new owners after ${attempt} passes: ${problems.slice(0, 5).join('; ')}`);
      }
    }
  }

  async #publish(ctx: Context, ringStore: PgRingStore): Promise<void> {
    const { move } = ctx;
    const current = await ringStore.current();
    if (current?.epoch === move.targetEpoch) {
      if (!sameRing(current, move.target)) throw new RebalanceError(`epoch ${move.targetEpoch} was published by someone else with other shards; this move cannot finish`);
      return;
    }
    if (current?.epoch !== move.targetEpoch - 1) {
      throw new RebalanceError(`the ring moved to epoch ${current?.epoch ?? 0} while this move to epoch ${move.targetEpoch} was in progress`);
    }
    if (move.kind === 'add') {
      const address = move.target.shards.find((s) => s.id === move.shardId)!.address;
      const problem = await checkServing(address, this.#o.healthTimeoutMs, identityHealthService(move.shardId, ctx.identities.get(move.shardId)!), this.#o.credentials);
      if (problem) {
        throw new RebalanceError(
          `${move.shardId} at ${address} is not serving (${problem}); start it, then run \`${commandOf(move)}\` again: the move resumes where it stopped`,
        );
      }
    }
    try {
      await ringStore.publish(move.target, move.targetEpoch - 1);
    } catch (err) {
      if (err instanceof RingConflictError) throw new RebalanceError(`the ring moved to epoch ${err.currentEpoch} while this move was publishing`);
      throw err;
    }
  }

  async #fence(ctx: Context): Promise<void> {
    const epoch = ctx.move.targetEpoch;
    const until = performance.now() + this.#o.fenceWaitMs;
    for (;;) {
      const lagging: ShardDb[] = [];
      for (const db of ctx.dbs.values()) if ((await db.fence()) < epoch) lagging.push(db);
      if (lagging.length === 0) return;
      if (performance.now() >= until) {
        // A shard that is down or deaf to notifications: fence its store for it.
        for (const db of lagging) await db.bumpFence(epoch);
        return;
      }
      this.#report(ctx, `waiting for ${lagging.map((db) => db.shardId).join(', ')} to hear epoch ${epoch}`);
      await sleep(100, this.#o.signal);
    }
  }

  /**
   * Retires the old copies: marks them `moved_at_epoch` (so the store itself
   * says they are not served), then deletes each once its new owner is
   * checked to hold it completely.
   */
  async #cleanup(ctx: Context): Promise<void> {
    const epoch = ctx.move.targetEpoch;
    let cleaned = 0;
    await Promise.all(
      ctx.sources.map(async (db) => {
        const moving = ctx.state.get(db)?.moving.values() ?? (await this.#listMoving(ctx, db)).moving.values();
        const byOwner = new Map<string, ListedStream[]>();
        for (const row of moving) addTo(byOwner, row.owner, row);
        for (const [owner, rows] of byOwner) {
          const dst = ctx.dbs.get(owner)!;
          for (let i = 0; i < rows.length; i += this.#o.statementStreams) {
            this.#o.signal?.throwIfAborted();
            const chunk = rows.slice(i, i + this.#o.statementStreams);
            const ids = chunk.map((r) => r.streamId);
            await db.seal(ids, epoch);
            const held = await dst.held(ids);
            const missing = chunk.filter((r) => {
              const h = held.get(r.streamId);
              return h === undefined || h.sealed || h.version < r.version;
            });
            if (missing.length > 0) {
              throw new RebalanceError(
                `refusing to delete the old copy of ${missing[0]!.streamId} on ${db.shardId}: ${owner} does not hold it completely (${missing.length} such streams)`,
              );
            }
            // Same content, not only the same version: a copy damaged on its way never replaces its original.
            const upTo = new Map(chunk.map((r) => [r.streamId, r.version]));
            const [mine, theirs] = await Promise.all([db.digests(upTo), dst.digests(upTo)]);
            const differing = chunk.filter((r) => mine.get(r.streamId) !== theirs.get(r.streamId));
            if (differing.length > 0) {
              throw new RebalanceError(
                `refusing to delete the old copy of ${differing[0]!.streamId} on ${db.shardId}: its copy on ${owner} differs in content (${differing.length} such streams)`,
              );
            }
            const n = await db.deleteSealed(ids, epoch);
            cleaned += n;
            ctx.figures = { ...ctx.figures, streamsCleaned: cleaned };
            await this.#progress(ctx);
          }
        }
      }),
    );
    ctx.figures = { ...ctx.figures, streamsCleaned: Math.max(cleaned, ctx.figures.streamsCleaned) };
  }

  /**
   * One copy pass. `full` lists every old owner's streams and asks the new
   * owners what they hold; `changes` looks only at streams with events after
   * the last pass (by position). Either way each new owner gets what it
   * lacks. Returns the events copied and the streams written to.
   */
  async #copyPass(ctx: Context, mode: 'full' | 'changes'): Promise<{ events: number; streams: Map<ShardDb, string[]> }> {
    const work = await Promise.all(
      ctx.sources.map(async (src) => {
        const known = ctx.state.get(src);
        if (mode === 'full' || !known) {
          const position = await src.maxPosition();
          const { seen, moving } = await this.#listMoving(ctx, src);
          const rows = [...moving.values()];
          const held = await this.#held(ctx, rows);
          const state: SourceState = { position, moving, held, seen };
          ctx.state.set(src, state);
          return { src, state, rows };
        }
        const position = await src.maxPosition();
        const changed = await src.changedSince(known.position, ctx.move.targetEpoch);
        known.position = position;
        const rows: (ListedStream & { owner: string })[] = [];
        for (const row of changed) {
          const owner = ctx.view.ownerOf(row.aggregateId).id;
          if (owner === src.shardId) continue;
          const withOwner = { ...row, owner };
          known.moving.set(row.streamId, withOwner);
          rows.push(withOwner);
        }
        const unknown = rows.filter((r) => !known.held.has(r.streamId));
        for (const [id, h] of await this.#held(ctx, unknown)) known.held.set(id, h);
        return { src, state: known, rows };
      }),
    );
    this.#count(ctx);
    await this.#progress(ctx, true);

    let events = 0;
    const written = new Map<ShardDb, string[]>();
    // Old owners in parallel; each one's batches one after another.
    await Promise.all(
      work.map(async ({ src, state, rows }) => {
        const byOwner = new Map<string, CopyItem[]>();
        for (const row of rows) {
          const h = state.held.get(row.streamId);
          const item = copyItem(row, h);
          if (!item) {
            throw new RebalanceError(
              `${row.owner} already holds ${row.streamId} at version ${h!.version}, ahead of ${src.shardId}'s ${row.version}: refusing to move over it`,
            );
          }
          if (item.to > item.from || item.purge) addTo(byOwner, row.owner, item);
        }
        const ids: string[] = [];
        written.set(src, ids);
        for (const [owner, items] of byOwner) {
          const dst = ctx.dbs.get(owner)!;
          for (const batch of copyBatches(items, this.#o.batchStreams, this.#o.batchEvents)) {
            this.#o.signal?.throwIfAborted();
            const t0 = performance.now();
            const payload = await src.read(batch);
            checkComplete(src.shardId, batch, payload);
            const inserted = await dst.write(batch, payload);
            for (const item of batch) {
              state.held.set(item.streamId, { version: item.to, sealed: false });
              ids.push(item.streamId);
            }
            events += inserted;
            ctx.copyMs += performance.now() - t0;
            ctx.copiedThisRun += batch.length;
            ctx.figures = { ...ctx.figures, eventsCopied: ctx.figures.eventsCopied + inserted };
            this.#count(ctx);
            await this.#progress(ctx);
            if (this.#o.pauseMs > 0) await sleep(this.#o.pauseMs, this.#o.signal);
          }
        }
      }),
    );
    return { events, streams: written };
  }

  /** Updates the stream figures from what this run knows. */
  #count(ctx: Context): void {
    let seen = 0;
    let total = 0;
    let copied = 0;
    for (const state of ctx.state.values()) {
      seen += state.seen;
      total += state.moving.size;
      for (const row of state.moving.values()) if ((state.held.get(row.streamId)?.version ?? -1) >= row.version) copied++;
    }
    ctx.figures = { ...ctx.figures, streamsSeen: seen, streamsTotal: total, streamsCopied: copied };
  }

  /** Whether every moving stream this run knows is at its old owner's version at its new owner. */
  #complete(ctx: Context): boolean {
    for (const state of ctx.state.values()) {
      for (const row of state.moving.values()) {
        const h = state.held.get(row.streamId);
        if (!h || h.sealed || h.version !== row.version) return false;
      }
    }
    return true;
  }

  /**
   * Checks the new owners really hold what this run copied or found there:
   * the streams row at the old owner's version, events 1..n. `only` limits it
   * to some streams per old owner (undefined = every moving stream).
   */
  async #verify(ctx: Context, only: Map<ShardDb, string[]> | undefined): Promise<string[]> {
    const problems: string[] = [];
    for (const src of ctx.sources) {
      const state = ctx.state.get(src);
      if (!state) continue;
      const ids = only ? new Set(only.get(src) ?? []) : undefined;
      const byOwner = new Map<string, ListedStream[]>();
      for (const row of state.moving.values()) {
        if (ids && !ids.has(row.streamId)) continue;
        addTo(byOwner, row.owner, row);
      }
      for (const [owner, rows] of byOwner) {
        const held = await ctx.dbs.get(owner)!.held(
          rows.map((r) => r.streamId),
          true,
        );
        for (const r of rows) {
          const h = held.get(r.streamId);
          if (!h) problems.push(`${owner} lacks ${r.streamId}`);
          else if (h.sealed || h.version !== r.version || h.events !== h.version || h.maxVersion !== h.version) {
            problems.push(`${owner} holds ${r.streamId} at version ${h.version} with ${h.events} events; ${src.shardId} has ${r.version}`);
          }
          if (h) state.held.set(r.streamId, { version: h.version, sealed: h.sealed });
        }
      }
    }
    return problems;
  }

  /** What the new owners hold of `rows`, asked per new owner. */
  async #held(ctx: Context, rows: readonly (ListedStream & { owner: string })[]): Promise<Map<string, { version: number; sealed: boolean }>> {
    const out = new Map<string, { version: number; sealed: boolean }>();
    const byOwner = new Map<string, string[]>();
    for (const r of rows) addTo(byOwner, r.owner, r.streamId);
    for (const [owner, ids] of byOwner) {
      for (const [id, h] of await ctx.dbs.get(owner)!.held(ids)) out.set(id, { version: h.version, sealed: h.sealed });
    }
    return out;
  }

  /** Every stream of `db` that the target ring gives to another shard, by id, with that shard. */
  async #listMoving(ctx: Context, db: ShardDb): Promise<{ seen: number; moving: Map<string, ListedStream & { owner: string }> }> {
    const moving = new Map<string, ListedStream & { owner: string }>();
    let seen = 0;
    for await (const page of db.listStreams(ctx.move.targetEpoch)) {
      for (const row of page) {
        // Copies found here on their way in (a resumed removal) are not this shard's streams.
        if (ctx.base.ownerOf(row.aggregateId).id === db.shardId) seen++;
        const owner = ctx.view.ownerOf(row.aggregateId).id;
        if (owner !== db.shardId) moving.set(row.streamId, { ...row, owner });
      }
    }
    return { seen, moving };
  }

  /** Opens every participant's store as registered (or as given); returns the registrations. */
  async #open(ringStore: PgRingStore, participants: readonly string[], dbs: Map<string, ShardDb>): Promise<Map<string, RegisteredStore>> {
    const stores = await ringStore.stores();
    const missing = participants.filter((id) => !stores.has(id));
    if (missing.length > 0) {
      throw new RebalanceError(
        `no event store registered for ${missing.join(', ')}: a shard registers its DATABASE_URL when it starts with RING_DATABASE_URL set; ` +
          'start it (or pass --database-url for a shard being added)',
      );
    }
    // A URL given to this run keeps its credentials; a registered one gets the rebalancer's own.
    for (const id of participants) dbs.set(id, new ShardDb(id, this.#o.databaseUrls?.[id] ?? withCredentials(stores.get(id)!.databaseUrl, this.#o.storeCredentials)));
    return stores;
  }

  /**
   * Registers a store URL the operator gave for `shardId` (`--database-url`),
   * only once that store proves to be the one `shardId` claimed.
   */
  async #registerGiven(ringStore: PgRingStore, shardId: string, url: string): Promise<void> {
    const db = new ShardDb(shardId, url);
    try {
      let identity;
      try {
        identity = await db.identity();
      } catch (err) {
        throw new RebalanceError(`cannot reach the event store given for ${shardId} (${redactDatabaseUrl(url)}): ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!identity) throw new RebalanceError(`the event store given for ${shardId} (${redactDatabaseUrl(url)}) has no store identity: start ${shardId} on it with this release first`);
      if (identity.shardId !== shardId) {
        throw new RebalanceError(
          `the event store given for ${shardId} (${redactDatabaseUrl(url)}) is ${identity.shardId ? `${identity.shardId}'s` : 'claimed by no shard'} (store ${identity.storeId}), not ${shardId}'s: refusing to use it`,
        );
      }
      try {
        await ringStore.registerStore(shardId, url, identity.storeId);
      } catch (err) {
        if (err instanceof StoreIdentityError) throw new RebalanceError(err.message);
        throw err;
      }
    } finally {
      await db.close();
    }
  }

  async #checkSchemas(dbs: ReadonlyMap<string, ShardDb>): Promise<void> {
    for (const db of dbs.values()) {
      let version: number;
      try {
        version = await db.schemaVersion();
      } catch (err) {
        throw new RebalanceError(`cannot reach ${db.shardId}'s event store: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (version < MOVE_FENCE_SCHEMA) {
        throw new RebalanceError(`${db.shardId}'s event store is at schema ${version}; start ${db.shardId} with this release first (it migrates its store)`);
      }
    }
  }

  async #checkNewShard(shardId: string, address: string, db: ShardDb, storeId: string): Promise<void> {
    const live = await db.liveStreamCount();
    if (live > 0) throw new RebalanceError(`${shardId}'s event store already holds ${live} streams; a shard must join the ring empty`);
    const problem = await checkServing(address, this.#o.healthTimeoutMs, '', this.#o.credentials);
    if (problem) throw new RebalanceError(`${shardId} at ${address} is not serving (${problem}); start the shard process first`);
    // Serving is not enough: the process there must be this shard on the store the move copies into.
    const other = await checkServing(address, this.#o.healthTimeoutMs, identityHealthService(shardId, storeId), this.#o.credentials);
    if (other) {
      throw new RebalanceError(
        `the process at ${address} is not ${shardId} serving store ${storeId} (${other}); give the address where ${shardId} listens on its own store`,
      );
    }
  }

  /** Reports progress, and saves the figures at most once a second (or now, with `force`). */
  async #progress(ctx: Context, force = false): Promise<void> {
    this.#report(ctx);
    const now = performance.now();
    if (!force && now - ctx.lastSaved < 1000) return;
    ctx.lastSaved = now;
    // Best effort: the figures are for `ring status`; the phase is what makes a move resumable.
    await ctx.moves.save(ctx.move.targetEpoch, ctx.figures).catch(() => {});
  }

  #report(ctx: Context, note?: string): void {
    if (!this.#o.onProgress) return;
    const rate = ctx.copyMs > 0 ? (ctx.copiedThisRun / ctx.copyMs) * 1000 : undefined;
    let eta: number | undefined;
    const f = ctx.figures;
    if ((ctx.phase === 'precopy' || ctx.phase === 'delta') && rate && rate > 0) eta = ((f.streamsTotal - f.streamsCopied) / rate) * 1000;
    this.#o.onProgress({
      targetEpoch: ctx.move.targetEpoch,
      kind: ctx.move.kind,
      shardId: ctx.move.shardId,
      phase: ctx.phase,
      figures: f,
      elapsedMs: this.#elapsed(),
      streamsPerSecond: rate,
      etaMs: eta === undefined ? undefined : Math.max(0, eta),
      ...(note ? { note } : {}),
    });
  }

  #elapsed(): number {
    return performance.now() - this.#started;
  }
}

/**
 * Checks every participant's store is the one its shard claimed and the one
 * registered for it, and that no store serves two shards; returns each
 * shard's store id.
 *
 * @throws RebalanceError naming the first mismatch.
 */
async function checkIdentities(dbs: ReadonlyMap<string, ShardDb>, stores: ReadonlyMap<string, RegisteredStore>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const byStore = new Map<string, string>();
  for (const db of dbs.values()) {
    const registered = stores.get(db.shardId)!;
    const where = redactDatabaseUrl(registered.databaseUrl);
    let identity;
    try {
      identity = await db.identity();
    } catch (err) {
      throw new RebalanceError(`cannot read ${db.shardId}'s store identity at ${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!identity) throw new RebalanceError(`${db.shardId}'s event store (${where}) has no store identity; start ${db.shardId} with this release first (it migrates its store)`);
    if (identity.shardId !== db.shardId) {
      throw new RebalanceError(
        `the event store registered for ${db.shardId} (${where}) is ${identity.shardId ? `${identity.shardId}'s` : 'claimed by no shard'} (store ${identity.storeId}): refusing to move streams through it`,
      );
    }
    if (registered.storeId !== identity.storeId) {
      throw new RebalanceError(
        registered.storeId === undefined
          ? `${db.shardId} registered its store before store ids existed; restart ${db.shardId} with this release so it registers store ${identity.storeId}`
          : `${db.shardId} is registered with store ${registered.storeId}, but ${where} is store ${identity.storeId}: refusing to move streams through it`,
      );
    }
    const twin = byStore.get(identity.storeId);
    if (twin) throw new RebalanceError(`${twin} and ${db.shardId} name the same event store (${identity.storeId}): refusing`);
    byStore.set(identity.storeId, db.shardId);
    ids.set(db.shardId, identity.storeId);
  }
  return ids;
}

/** The ring a move starts from, as far as hashing goes: the target with the added shard left out or the removed one put back. */
function baseRing(move: MoveRecord): RingDocument {
  if (move.kind === 'add') return { epoch: move.targetEpoch - 1, shards: move.target.shards.filter((s) => s.id !== move.shardId) };
  // Ownership hashes shard ids only; the removed shard's address is not needed (nor known after the switch).
  return { epoch: move.targetEpoch - 1, shards: [...move.target.shards, { id: move.shardId, address: 'removed.invalid:1' }] };
}

/** The shards a move touches: the new ring's, and a shard being removed. */
function participantsOf(target: RingDocument, request: MoveRequest): string[] {
  const ids = target.shards.map((s) => s.id);
  if (request.kind === 'remove' && !ids.includes(request.shardId)) ids.push(request.shardId);
  return ids;
}

function sameRing(a: RingDocument, b: RingDocument): boolean {
  return a.epoch === b.epoch && a.shards.length === b.shards.length && a.shards.every((s, i) => s.id === b.shards[i]!.id && s.address === b.shards[i]!.address);
}

/** Every stream of the batch must come with exactly its versions from+1..to. */
function checkComplete(shardId: string, batch: readonly CopyItem[], payload: CopyPayload): void {
  const next = new Map(batch.map((i) => [i.streamId, i.from + 1]));
  for (const e of payload.events) {
    const want = next.get(e.streamId);
    if (want !== e.version) throw new Error(`${shardId}: ${e.streamId} has version ${e.version} where ${want} was expected`);
    next.set(e.streamId, want + 1);
  }
  for (const item of batch) {
    if (next.get(item.streamId) !== item.to + 1) throw new Error(`${shardId}: ${item.streamId} lacks events up to version ${item.to}`);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(asError(signal.reason));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(asError(signal!.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}


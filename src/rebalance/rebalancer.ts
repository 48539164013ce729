/**
 * Adds a shard to the ring or takes one out while the cluster serves:
 * moves exactly the streams whose owner changes, loses none of their events,
 * command-id records or snapshots, then switches the ring. Driven by
 * `shardwrite ring add | remove` (cli/ring.ts); the plan lives in the ring
 * database (`move-store.ts`), so a move interrupted anywhere — the tool, a
 * shard or a router killed — is finished by running the same command again.
 *
 * How one move goes (ARCHITECTURE.md, "Ring and rebalancing"): the plan
 * (target ring, next epoch) is recorded and announced on the ring channel,
 * so every shard learns which of its aggregates the target ring gives away;
 * then the phases of `MOVE_PHASES` (plan.ts) run in order, one module each
 * under phases/, each recorded once complete: `precopy`, `seal`, `delta`,
 * `publish`, `fence`, `cleanup`. This module runs them; `MoveTally`
 * (figures.ts) accumulates the figures they report.
 */
import { PgRingStore, RingView, type RingDocument } from '../ring/index.js';
import { abandonCopies, type AbortFigures } from './abort.js';
import { rebindStore, type RebindResult } from './rebind.js';
import type * as grpc from '@grpc/grpc-js';
import type { StoreCredentials } from '../store/database-url.js';
import type { Copies } from './copies.js';
import { MoveTally, type MoveCounts } from './figures.js';
import { NO_FIGURES, PgMoveStore, type MoveFigures, type MoveRecord } from './move-store.js';
import type { MoveRun, MoveRunOptions } from './move-run.js';
import { baseRing, checkIdentities, checkNewShard, checkSchemas, openStores, participantsOf, registerGiven } from './participants.js';
import { cleanup } from './phases/cleanup.js';
import { delta } from './phases/delta.js';
import { fence } from './phases/fence.js';
import { precopy } from './phases/precopy.js';
import { publish } from './phases/publish.js';
import { seal } from './phases/seal.js';
import { MOVE_PHASES, RebalanceError, commandOf, decide, describeMove, type MovePhase, type MoveRequest } from './plan.js';
import type { MoveProgress } from './progress.js';
import type { ShardDb } from './shard-db.js';

export interface RebalancerOptions {
  /** The ring database. */
  readonly ringDatabaseUrl: string;
  /** Streams per copy transaction; default {@link REBALANCER_DEFAULTS}`.batchStreams`. */
  readonly batchStreams?: number;
  /** Events per copy transaction (a longer stream goes alone); default {@link REBALANCER_DEFAULTS}`.batchEvents`. */
  readonly batchEvents?: number;
  /** Pause between two copy batches from one old owner, to spare a busy cluster; default {@link REBALANCER_DEFAULTS}`.pauseMs`. */
  readonly pauseMs?: number;
  /** Streams sealed, or deleted, per statement; default {@link REBALANCER_DEFAULTS}`.statementStreams`. */
  readonly statementStreams?: number;
  /** How long `fence` lets the shards raise their fences themselves before it does; default {@link REBALANCER_DEFAULTS}`.fenceWaitMs`. */
  readonly fenceWaitMs?: number;
  /** Least time between recording a plan and sealing, so every shard has read it; default {@link REBALANCER_DEFAULTS}`.planNoticeMs`. */
  readonly planNoticeMs?: number;
  /** Deadline of the new shard's health check; default {@link REBALANCER_DEFAULTS}`.healthTimeoutMs`. */
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
    const undo = move.kind === 'add' ? `shardwrite ring remove ${move.shardId}` : `shardwrite ring add ${move.shardId} --address ${removedAddress ?? '<host:port>'}`;
    super(
      `the move (${describeMove(move)}, phase ${move.phase}) already switched the ring to epoch ${move.targetEpoch}: ` +
        `its streams are served by their new owners, so it cannot be aborted. Finish it with \`${commandOf(move)}\`, ` +
        `then undo it with \`${undo}\``,
    );
    this.name = 'MoveSwitchedError';
  }
}

/** The defaults of `RebalancerOptions`. */
export const REBALANCER_DEFAULTS = {
  /** @default 500 */
  batchStreams: 500,
  /** @default 5000 */
  batchEvents: 5000,
  /** @default 0 (ms) */
  pauseMs: 0,
  /** @default 1000 */
  statementStreams: 1000,
  /** @default 10000 (ms) */
  fenceWaitMs: 10_000,
  /** @default 1000 (ms) */
  planNoticeMs: 1000,
  /** @default 3000 (ms) */
  healthTimeoutMs: 3000,
} as const satisfies Omit<MoveRunOptions, 'credentials' | 'signal'>;

/** Runs moves; one instance per CLI invocation is enough. */
export class Rebalancer {
  readonly #o: MoveRunOptions & RebalancerOptions;
  #started = 0;

  constructor(options: RebalancerOptions) {
    this.#o = { ...REBALANCER_DEFAULTS, ...options };
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
      for (const [id, url] of Object.entries(this.#o.databaseUrls ?? {})) await registerGiven(ringStore, id, url);
      const target = decision.action === 'start' ? decision.target : decision.move.target;
      const participants = participantsOf(target, request);
      const stores = await openStores(ringStore, participants, dbs, this.#o);
      await checkSchemas(dbs);
      // Before anything is copied, sealed or published: every store is the one its shard claimed and registered.
      const identities = await checkIdentities(dbs, stores);

      let move: MoveRecord;
      if (decision.action === 'start') {
        if (request.kind === 'add') await checkNewShard(request.shardId, request.address, dbs.get(request.shardId)!, identities.get(request.shardId)!, this.#o);
        move = await moves.create({ kind: request.kind, shardId: request.shardId, target });
      } else {
        move = active!;
      }
      const run: MoveRun = {
        move,
        identities,
        view: new RingView(move.target),
        base: new RingView(baseRing(move)),
        dbs,
        sources: participants.filter((id) => !(request.kind === 'add' && id === request.shardId)).map((id) => dbs.get(id)!),
        options: this.#o,
        tally: new MoveTally(move, moves, this.#o.onProgress, () => this.#elapsed()),
      };
      await this.#execute(run, ringStore, moves);
      return { outcome: 'done', epoch: move.targetEpoch, resumed: decision.action === 'resume', figures: run.tally.figures, durationMs: this.#elapsed() };
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
        move.kind === 'add' ? { kind: 'add', shardId: move.shardId, address: move.target.shards.find((s) => s.id === move.shardId)!.address } : { kind: 'remove', shardId: move.shardId };
      const stores = await openStores(ringStore, participantsOf(move.target, request), dbs, this.#o);
      await checkSchemas(dbs);
      await checkIdentities(dbs, stores);
      await moves.rewindForAbort(move.targetEpoch);
      this.#o.onProgress?.({
        targetEpoch: move.targetEpoch,
        kind: move.kind,
        shardId: move.shardId,
        phase: 'precopy',
        figures: move.figures,
        elapsedMs: this.#elapsed(),
        streamsPerSecond: undefined,
        etaMs: undefined,
        note: `aborting (it stood in phase ${from})`,
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
  async #locked<T>(fn: (session: { ringStore: PgRingStore; moves: PgMoveStore; dbs: Map<string, ShardDb>; current: RingDocument | undefined }) => Promise<T>): Promise<T> {
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

  /** Runs the move's phases from the one it stands in, recording each once complete. */
  async #execute(run: MoveRun, ringStore: PgRingStore, moves: PgMoveStore): Promise<void> {
    const { move, tally } = run;
    const copies: Copies = new Map();
    const phases: Record<Exclude<MovePhase, 'done'>, () => Promise<Partial<MoveCounts> | void>> = {
      precopy: () => precopy(run, copies),
      seal: () => seal(run, move.ageMs + this.#elapsed()),
      delta: () => delta(run, copies),
      publish: () => publish(run, ringStore),
      fence: () => fence(run),
      cleanup: () => cleanup(run, copies),
    };
    for (let i = MOVE_PHASES.indexOf(move.phase); i < MOVE_PHASES.length - 1; i++) {
      const phase = MOVE_PHASES[i]!;
      if (phase === 'done') break;
      const started = performance.now();
      tally.enter(phase);
      // Between two phases is a step boundary too: a stop asked for here leaves the move in this phase.
      this.#o.signal?.throwIfAborted();
      const counts = await phases[phase]();
      if (counts) tally.set(counts);
      tally.timed(phase, performance.now() - started);
      const next = MOVE_PHASES[i + 1]!;
      if (next === 'done') await moves.finish(move.targetEpoch, tally.figures);
      else await moves.save(move.targetEpoch, tally.figures, next);
    }
    tally.enter('done');
  }

  #elapsed(): number {
    return performance.now() - this.#started;
  }
}

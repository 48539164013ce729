/**
 * The figures a move reports, accumulated over its phases: its stream and
 * event counts and phase times (`MoveFigures`, saved with the move for
 * `ring status`), this run's copy rate, and the progress reports made of them.
 */
import type { MoveFigures, MoveRecord } from './move-store.js';
import type { MovePhase } from './plan.js';
import type { MoveProgress } from './progress.js';

/** The counts of `MoveFigures` a phase sets. */
export type MoveCounts = Omit<MoveFigures, 'phaseMs'>;

/** Where the figures are saved: the move's row (best effort; the phase is what makes a move resumable). */
export interface FiguresSink {
  save(targetEpoch: number, figures: MoveFigures): Promise<void>;
}

/** Least time between two saves of the figures while a phase runs. @default 1000 (ms) */
const SAVE_EVERY_MS = 1000;

export class MoveTally {
  #figures: MoveFigures;
  #phase: MovePhase;
  /** Streams copied and time spent copying in this run, for the rate. */
  #copiedThisRun = 0;
  #copyMs = 0;
  #lastSaved = 0;

  constructor(
    private readonly move: MoveRecord,
    private readonly sink: FiguresSink,
    private readonly onProgress: ((progress: MoveProgress) => void) | undefined,
    /** Milliseconds since this run started. */
    private readonly elapsed: () => number,
  ) {
    this.#figures = move.figures;
    this.#phase = move.phase;
  }

  get figures(): MoveFigures {
    return this.#figures;
  }

  get phase(): MovePhase {
    return this.#phase;
  }

  /** The move is now in `phase`. */
  enter(phase: MovePhase): void {
    this.#phase = phase;
    this.report();
  }

  /** Sets some counts. */
  set(counts: Partial<MoveCounts>): void {
    this.#figures = { ...this.#figures, ...counts };
  }

  /** One copy batch: `streams` streams and `events` events written, in `ms`. */
  copied(streams: number, events: number, ms: number): void {
    this.#copiedThisRun += streams;
    this.#copyMs += ms;
    this.#figures = { ...this.#figures, eventsCopied: this.#figures.eventsCopied + events };
  }

  /** Adds `ms` to the time `phase` took (over all runs). */
  timed(phase: MovePhase, ms: number): void {
    const phaseMs = { ...this.#figures.phaseMs, [phase]: (this.#figures.phaseMs[phase] ?? 0) + Math.round(ms) };
    this.#figures = { ...this.#figures, phaseMs };
  }

  /** Reports progress, and saves the figures at most once a second (or now, with `force`). */
  async progress(force = false): Promise<void> {
    this.report();
    const now = performance.now();
    if (!force && now - this.#lastSaved < SAVE_EVERY_MS) return;
    this.#lastSaved = now;
    // Best effort: the figures are for `ring status`; the phase is what makes a move resumable.
    await this.sink.save(this.move.targetEpoch, this.#figures).catch(() => {});
  }

  /** Reports where the move stands (with what it waits for, as `note`). */
  report(note?: string): void {
    if (!this.onProgress) return;
    const rate = this.#copyMs > 0 ? (this.#copiedThisRun / this.#copyMs) * 1000 : undefined;
    let eta: number | undefined;
    const f = this.#figures;
    if ((this.#phase === 'precopy' || this.#phase === 'delta') && rate && rate > 0) eta = ((f.streamsTotal - f.streamsCopied) / rate) * 1000;
    this.onProgress({
      targetEpoch: this.move.targetEpoch,
      kind: this.move.kind,
      shardId: this.move.shardId,
      phase: this.#phase,
      figures: f,
      elapsedMs: this.elapsed(),
      streamsPerSecond: rate,
      etaMs: eta === undefined ? undefined : Math.max(0, eta),
      ...(note ? { note } : {}),
    });
  }
}

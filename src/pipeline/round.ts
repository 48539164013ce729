/**
 * How one round of a stream's batch (read → decide → seal → append) ends, and
 * what the pipeline does next: `nextStep` turns every outcome into the answers
 * given now and the commands decided again, so each command of the round is
 * either answered or carried into the next round, never both, never neither.
 */
import { ConcurrencyError, DeadlineExceededError, DuplicateCommandError, StreamMovingError, VersionConflictError, WrongShardError } from '../errors.js';
import type { SubjectErasedError } from '../privacy/personal-data.js';
import { fullJitterDelay } from './backoff.js';
import type { Decision, Pending } from './decide-round.js';
import type { PipelineOptions } from './options.js';

/** What the store reported for a round's append. */
export interface Appended {
  readonly positions: readonly bigint[];
  readonly recordedAt: Date;
  /** The version of the entry's first event. */
  readonly first: number;
  /** The stream's version and state after the append. */
  readonly version: number;
  readonly state: unknown;
}

/**
 * How a store-side move refusal was waited out: `retry` (the store was sealed
 * for a move this shard had not heard of; the ring was re-read), `moved` (the
 * new ring arrived: answer WRONG_SHARD), `moving` (answer STREAM_MOVING).
 */
export type MoveWait = 'retry' | 'moved' | 'moving';

/** How one round ended. Each kind has one row in test/pipeline/round-outcome.unit.test.ts. */
export type RoundOutcome =
  /** Decided, and appended when anything was to append: each decision is its command's answer. */
  | { readonly kind: 'done'; readonly decisions: readonly Decision[]; readonly appended?: Appended }
  /**
   * Decided on the stream assumed new, and the assumption did not hold (the append conflicted, a
   * decision was not a plain append, sealing refused an erased subject): decide again on the
   * stream as read, without counting an attempt or backing off.
   */
  | { readonly kind: 'refuted' }
  /** These commands would record an erased subject's personal data: refused; the rest are decided again. */
  | { readonly kind: 'erased'; readonly refused: ReadonlyMap<Pending, SubjectErasedError> }
  /** Another writer appended first; the round was decided on `loadedVersion`. */
  | { readonly kind: 'conflict'; readonly error: ConcurrencyError | DuplicateCommandError; readonly loadedVersion: number }
  /** The store is sealed for a move of the stream; nothing was written. */
  | { readonly kind: 'moving'; readonly error: StreamMovingError; readonly wait: MoveWait; readonly decisions: readonly Decision[] }
  /** The store was fenced at a newer epoch (I6); nothing was written. */
  | { readonly kind: 'fenced'; readonly error: unknown }
  /**
   * Sealing or appending failed with an unknown commit outcome or a dead store: the decisions'
   * own refusals stand, the others get the error (their caller retries with the command id).
   */
  | { readonly kind: 'unknown'; readonly error: unknown; readonly decisions: readonly Decision[] }
  /** The stream, its tenant or its known command ids could not be read: nothing was decided. */
  | { readonly kind: 'unread'; readonly error: unknown };

/** A command's answer: its decision, or an error from outside the decider. */
export type Answer = Decision | { readonly kind: 'error'; readonly p: Pending; readonly error: unknown };

/** The commands to decide again, and how. */
export interface Retry {
  readonly live: Pending[];
  /** Attempts counted so far (a conflict or a move retry counts one). */
  readonly attempt: number;
  /** Answer DEADLINE_EXCEEDED to the commands whose deadline passed, before deciding again. */
  readonly expire: boolean;
  /** Wait this long first (full-jitter backoff after a conflict). */
  readonly backoffMs?: number;
}

/** What follows a round: answers now, and maybe another round. */
export interface Step {
  readonly answers: readonly Answer[];
  readonly appended?: Appended;
  readonly retry?: Retry;
}

/** Where the round stands in its command's retry budget. */
export interface RoundClock {
  readonly attempt: number;
  readonly elapsedMs: number;
}

type RetryOptions = Pick<PipelineOptions, 'maxAttempts' | 'retryBudgetMs' | 'retryBaseMs' | 'retryCapMs'>;

const decisionsOr = (decisions: readonly Decision[], error: unknown): Answer[] => decisions.map((d) => (d.kind === 'failed' ? d : { kind: 'error', p: d.p, error }));

const all = (live: readonly Pending[], error: unknown): Answer[] => live.map((p) => ({ kind: 'error', p, error }));

/**
 * The one policy for what follows each kind of round: which commands are
 * answered, with what, and which are decided again. Pure.
 */
export function nextStep(outcome: RoundOutcome, live: Pending[], clock: RoundClock, options: RetryOptions, random?: () => number): Step {
  const { attempt } = clock;
  switch (outcome.kind) {
    case 'done':
      return { answers: outcome.decisions, ...(outcome.appended ? { appended: outcome.appended } : {}) };
    case 'refuted':
      return { answers: [], retry: { live, attempt, expire: false } };
    case 'erased':
      return {
        answers: [...outcome.refused].map(([p, error]) => ({ kind: 'error', p, error })),
        retry: { live: live.filter((p) => !outcome.refused.has(p)), attempt, expire: false },
      };
    case 'moving': {
      if (outcome.wait === 'retry' && attempt + 1 < options.maxAttempts) return { answers: [], retry: { live, attempt: attempt + 1, expire: true } };
      // Nothing was written. The state this round was decided on is the stream's final one
      // here, so its refusals stand; the others are told where to go, or to come back.
      const { error } = outcome;
      const answer = outcome.wait === 'moved' ? new WrongShardError(error.targetEpoch, `the stream moved to another shard at epoch ${error.targetEpoch}`) : error;
      return { answers: decisionsOr(outcome.decisions, answer) };
    }
    case 'fenced':
    case 'unread':
      return { answers: all(live, outcome.error) };
    case 'unknown':
      return { answers: decisionsOr(outcome.decisions, outcome.error) };
    case 'conflict': {
      if (attempt + 1 >= options.maxAttempts || clock.elapsedMs >= options.retryBudgetMs) {
        const { error } = outcome;
        const current = error instanceof ConcurrencyError ? (error.currentVersion ?? outcome.loadedVersion) : outcome.loadedVersion;
        return { answers: all(live, new VersionConflictError(live[0]!.streamId, current)) };
      }
      const backoffMs = fullJitterDelay(attempt, options.retryBaseMs, options.retryCapMs, random);
      return { answers: [], retry: { live, attempt: attempt + 1, expire: true, backoffMs } };
    }
  }
}

/** Splits off the commands whose deadline passed while they waited, answered DEADLINE_EXCEEDED. */
export function expireOverdue(live: Pending[], now: number): { live: Pending[]; answers: Answer[] } {
  const answers: Answer[] = [];
  const rest = live.filter((p) => {
    if (p.deadline === undefined || p.deadline > now) return true;
    answers.push({ kind: 'error', p, error: new DeadlineExceededError('deadline passed while the command waited') });
    return false;
  });
  return { live: rest, answers };
}

/**
 * What follows each way a round can end (`nextStep`): one row per
 * `RoundOutcome` kind (and per branch where a kind has two). Every row checks
 * that each command of the round is either answered or decided again — never
 * both, never neither — and what each one is answered.
 */
import { describe, expect, it } from 'vitest';
import { BusinessRuleError, ConcurrencyError, DeadlineExceededError, StoreUnavailableError, StreamMovingError, VersionConflictError, WrongShardError } from '../../src/errors.js';
import type { Decision, Pending } from '../../src/pipeline/decide-round.js';
import { DEFAULT_PIPELINE_OPTIONS } from '../../src/pipeline/options.js';
import { expireOverdue, nextStep, type Answer, type RoundOutcome } from '../../src/pipeline/round.js';
import { SubjectErasedError } from '../../src/privacy/personal-data.js';

function pending(name: string, deadline?: number): Pending {
  return {
    routed: { aggregateType: 'order-lines', aggregateId: 'o1', command: { type: 'AddOrderLine', data: { name } } },
    identity: { principal: 'p', tenant: 't', scopes: [] },
    digest: undefined,
    streamId: 'order-lines-o1',
    metadata: {},
    deadline,
    enqueuedAt: 0,
    span: undefined,
    spanQueuedAt: 0,
    resolve: () => {},
    reject: () => {},
  };
}

const [a, b, c] = [pending('a'), pending('b'), pending('c')] as [Pending, Pending, Pending];
const live = [a, b, c];
const refusal = new BusinessRuleError('line b exists');
/** a appends, b is refused by the decider, c is a duplicate. */
const decisions: Decision[] = [
  { kind: 'append', p: a, events: [], firstVersion: 1 },
  { kind: 'failed', p: b, error: refusal },
  { kind: 'duplicate', p: c, versions: { firstVersion: 1, lastVersion: 1 } },
];
const moving = new StreamMovingError(7, 100);
const unknownOutcome = new StoreUnavailableError('connection lost mid-commit');
const fenced = new WrongShardError(9, 'fenced');
const appended = { positions: [1n], recordedAt: new Date(0), first: 1, version: 1, state: {} };

/** What a command got: its own decision, an error of a class, or another round. */
type Expected = 'decision' | 'retry' | (new (...args: never[]) => Error);

interface Row {
  readonly name: string;
  readonly outcome: RoundOutcome;
  readonly attempt?: number;
  readonly elapsedMs?: number;
  readonly expected: readonly [Expected, Expected, Expected];
  /** The next round: its attempt count, whether it expires overdue commands first, whether it backs off. */
  readonly retry?: { attempt: number; expire: boolean; backoff: boolean };
  readonly check?: (answers: readonly Answer[]) => void;
}

const errorOf = (answers: readonly Answer[], p: Pending) => {
  const found = answers.find((x) => x.p === p);
  return found && (found.kind === 'error' || found.kind === 'failed') ? found.error : undefined;
};

const rows: Row[] = [
  { name: 'done: every decision is its command’s answer', outcome: { kind: 'done', decisions, appended }, expected: ['decision', 'decision', 'decision'] },
  { name: 'refuted: all decided again, no attempt counted, no backoff', outcome: { kind: 'refuted' }, expected: ['retry', 'retry', 'retry'], retry: { attempt: 0, expire: false, backoff: false } },
  {
    name: 'erased: the refused are answered, the rest decided again without counting an attempt',
    outcome: { kind: 'erased', refused: new Map([[b, new SubjectErasedError('s1')]]) },
    expected: ['retry', SubjectErasedError, 'retry'],
    retry: { attempt: 0, expire: false, backoff: false },
  },
  {
    name: 'conflict: all decided again after a backoff, one attempt counted',
    outcome: { kind: 'conflict', error: new ConcurrencyError('order-lines-o1', 3), loadedVersion: 2 },
    expected: ['retry', 'retry', 'retry'],
    retry: { attempt: 1, expire: true, backoff: true },
  },
  {
    name: 'conflict, attempts exhausted: all answered VERSION_CONFLICT at the store’s version',
    outcome: { kind: 'conflict', error: new ConcurrencyError('order-lines-o1', 3), loadedVersion: 2 },
    attempt: DEFAULT_PIPELINE_OPTIONS.maxAttempts - 1,
    expected: [VersionConflictError, VersionConflictError, VersionConflictError],
    check: (answers) => expect((errorOf(answers, a) as VersionConflictError).currentVersion).toBe(3),
  },
  {
    name: 'conflict, retry budget spent: all answered VERSION_CONFLICT at the loaded version when the store did not say',
    outcome: { kind: 'conflict', error: new ConcurrencyError('order-lines-o1', undefined), loadedVersion: 2 },
    elapsedMs: DEFAULT_PIPELINE_OPTIONS.retryBudgetMs,
    expected: [VersionConflictError, VersionConflictError, VersionConflictError],
    check: (answers) => expect((errorOf(answers, c) as VersionConflictError).currentVersion).toBe(2),
  },
  {
    name: 'moving, plan unknown to this shard: all decided again, one attempt counted, no backoff',
    outcome: { kind: 'moving', error: moving, wait: 'retry', decisions },
    expected: ['retry', 'retry', 'retry'],
    retry: { attempt: 1, expire: true, backoff: false },
  },
  {
    name: 'moving, the new ring arrived: refusals stand, the others are answered WRONG_SHARD at the target epoch',
    outcome: { kind: 'moving', error: moving, wait: 'moved', decisions },
    expected: [WrongShardError, BusinessRuleError, WrongShardError],
    check: (answers) => expect((errorOf(answers, a) as WrongShardError).epoch).toBe(7),
  },
  {
    name: 'moving, no new ring in time: refusals stand, the others are answered STREAM_MOVING',
    outcome: { kind: 'moving', error: moving, wait: 'moving', decisions },
    expected: [StreamMovingError, BusinessRuleError, StreamMovingError],
  },
  { name: 'fenced: all answered with the fence', outcome: { kind: 'fenced', error: fenced }, expected: [WrongShardError, WrongShardError, WrongShardError] },
  {
    name: 'unknown commit outcome: refusals stand, the others get the store’s error',
    outcome: { kind: 'unknown', error: unknownOutcome, decisions },
    expected: [StoreUnavailableError, BusinessRuleError, StoreUnavailableError],
  },
  { name: 'unread: all answered with the read’s error', outcome: { kind: 'unread', error: unknownOutcome }, expected: [StoreUnavailableError, StoreUnavailableError, StoreUnavailableError] },
];

describe('what follows a round', () => {
  it('has a row for every kind of outcome', () => {
    const kinds = new Set(rows.map((r) => r.outcome.kind));
    expect([...kinds].sort()).toEqual(['conflict', 'done', 'erased', 'fenced', 'moving', 'refuted', 'unknown', 'unread']);
  });

  it.each(rows)('$name', (row) => {
    const step = nextStep(row.outcome, live, { attempt: row.attempt ?? 0, elapsedMs: row.elapsedMs ?? 0 }, DEFAULT_PIPELINE_OPTIONS, () => 0.5);
    const answered = step.answers.map((x) => x.p);
    const retried = step.retry?.live ?? [];
    // Each command exactly once: answered, or carried into the next round.
    expect([...answered, ...retried].sort((x, y) => live.indexOf(x) - live.indexOf(y))).toEqual(live);
    live.forEach((p, i) => {
      const want = row.expected[i]!;
      if (want === 'retry') return expect(retried).toContain(p);
      const answer = step.answers.find((x) => x.p === p)!;
      if (want === 'decision') return expect(answer).toBe(decisions[i]);
      expect(answer.kind === 'error' || answer.kind === 'failed' ? answer.error : answer).toBeInstanceOf(want);
    });
    if (row.retry) {
      expect(step.retry).toMatchObject({ attempt: row.retry.attempt, expire: row.retry.expire });
      expect(step.retry?.backoffMs !== undefined).toBe(row.retry.backoff);
    } else {
      expect(step.retry).toBeUndefined();
    }
    expect(step.appended).toBe(row.outcome.kind === 'done' ? appended : undefined);
    row.check?.(step.answers);
  });

  it('answers DEADLINE_EXCEEDED to the commands whose deadline passed, and keeps the others', () => {
    const late = pending('late', 100);
    const onTime = pending('on time', 300);
    const { live: rest, answers } = expireOverdue([late, onTime, a], 200);
    expect(rest).toEqual([onTime, a]);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ kind: 'error', p: late });
    expect((answers[0] as { error: unknown }).error).toBeInstanceOf(DeadlineExceededError);
  });
});

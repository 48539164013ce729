import { describe, expect, it } from 'vitest';
import { MoveTally } from '../../src/rebalance/figures.js';
import { NO_FIGURES, type MoveFigures, type MoveRecord } from '../../src/rebalance/move-store.js';
import { MOVE_PHASES } from '../../src/rebalance/plan.js';
import type { MoveProgress } from '../../src/rebalance/progress.js';

describe('the phases of a move', () => {
  it('has one module per phase, under phases/, exporting the phase by its name', async () => {
    for (const phase of MOVE_PHASES.filter((p) => p !== 'done')) {
      const module = (await import(`../../src/rebalance/phases/${phase}.ts`)) as Record<string, unknown>;
      expect(typeof module[phase], phase).toBe('function');
    }
  });
});

describe('the figures of a move', () => {
  const move = { targetEpoch: 4, kind: 'add', shardId: 'shard-3', phase: 'precopy', figures: { ...NO_FIGURES, eventsCopied: 10, phaseMs: { precopy: 5 } } } as unknown as MoveRecord;

  it('accumulates copies and phase times over runs, and reports the rate and what is left', () => {
    const reports: MoveProgress[] = [];
    const tally = new MoveTally(
      move,
      { save: async () => {} },
      (p) => reports.push(p),
      () => 0,
    );
    tally.set({ streamsTotal: 100, streamsCopied: 40 });
    tally.copied(40, 90, 2000);
    tally.timed('precopy', 1000.4);
    tally.report();
    expect(tally.figures).toMatchObject({ streamsTotal: 100, streamsCopied: 40, eventsCopied: 100, phaseMs: { precopy: 1005 } });
    expect(reports.at(-1)).toMatchObject({ phase: 'precopy', streamsPerSecond: 20, etaMs: 3000 });
  });

  it('saves the figures at most once a second while a phase runs, and at once when forced', async () => {
    const saved: MoveFigures[] = [];
    const tally = new MoveTally(move, { save: async (_, f) => void saved.push(f) }, undefined, () => 0);
    await tally.progress(true);
    await tally.progress();
    expect(saved).toHaveLength(1);
    await tally.progress(true);
    expect(saved).toHaveLength(2);
  });
});

/**
 * Phase `delta`: copies what was appended between the last pre-copy pass
 * and the seal — found by event position, not by listing every stream;
 * nothing moving changes any more — and checks it at the new owners. A
 * resumed run, which knows nothing yet, and a second attempt list and check
 * everything.
 *
 * In: the run's stores and rings, and what `precopy` copied in this run
 * (`copies`, empty after a resume). Out: every moving stream complete at its
 * new owner; the copy figures and `streamsSealed`.
 * @throws RebalanceError when the copies are still not complete after three passes.
 */
import { copiesComplete, copyPass, verifyCopies, type Copies } from '../copies.js';
import type { MoveRun } from '../move-run.js';
import { RebalanceError } from '../plan.js';

const MAX_PASSES = 3;

export async function delta(run: Pick<MoveRun, 'move' | 'view' | 'base' | 'dbs' | 'sources' | 'options' | 'tally'>, copies: Copies): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const incremental = attempt === 1 && copies.size === run.sources.length;
    const copied = await copyPass(run, copies, incremental ? 'changes' : 'full');
    run.tally.set({ streamsSealed: run.tally.figures.streamsTotal });
    const problems = await verifyCopies(run, copies, incremental ? copied.streams : undefined);
    if (problems.length === 0 && copiesComplete(copies)) return;
    if (attempt === MAX_PASSES) {
      throw new RebalanceError(`moving streams are not complete at their new owners after ${attempt} passes: ${problems.slice(0, 5).join('; ')}`);
    }
  }
}

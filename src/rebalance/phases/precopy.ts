/**
 * Phase `precopy`: copies every moving stream to its new owner while its old
 * owner still serves it — a full pass, then passes over what changed
 * meanwhile while there is much of it, then a check of every copy — so the
 * sealed window that follows has only the last changes to copy.
 *
 * In: the run's stores and rings. Out: `copies` filled; the copy figures.
 * @throws RebalanceError when a copy is not what was copied.
 */
import { copyPass, verifyCopies, type Copies } from '../copies.js';
import type { MoveRun } from '../move-run.js';
import { RebalanceError } from '../plan.js';

/** Another pass over what changed is worth it while the last one copied at least this many events. */
const CHANGES_WORTH_A_PASS = 1000;

export async function precopy(run: Pick<MoveRun, 'move' | 'view' | 'base' | 'dbs' | 'sources' | 'options' | 'tally'>, copies: Copies): Promise<void> {
  let copied = await copyPass(run, copies, 'full');
  for (let pass = 0; pass < 2 && copied.events >= CHANGES_WORTH_A_PASS; pass++) copied = await copyPass(run, copies, 'changes');
  const problems = await verifyCopies(run, copies, undefined);
  if (problems.length > 0) throw new RebalanceError(`copies at the new owners are not what was copied: ${problems.slice(0, 5).join('; ')}`);
}

import { OverloadedError } from '../errors.js';
import type { PipelineOptions } from './options.js';

/**
 * The shard's budget of commands accepted and not yet answered: `maxInFlight`
 * in all, and a `callerSharePercent` share of it per caller, so one principal
 * or connection cannot take the whole budget.
 */
export class InFlightBudget {
  private total = 0;
  /** Commands held per caller (only callers holding some). */
  private readonly callers = new Map<string, number>();

  constructor(
    private readonly options: Pick<PipelineOptions, 'maxInFlight' | 'callerSharePercent' | 'overloadRetryAfterMs'>,
    private readonly gauge: { inc(): void; dec(): void },
  ) {}

  /** Commands accepted and not yet answered. */
  get held(): number {
    return this.total;
  }

  /** Whether the shard's whole budget is taken. */
  get full(): boolean {
    return this.total >= this.options.maxInFlight;
  }

  /**
   * Takes one command's place for `caller` (unset: counted in the total
   * only) and returns its release; releasing twice releases once.
   *
   * @throws OverloadedError when the caller holds its whole share.
   */
  take(caller: string | undefined): () => void {
    const held = caller === undefined ? 0 : (this.callers.get(caller) ?? 0);
    if (caller !== undefined && held >= Math.max(1, Math.floor((this.options.maxInFlight * this.options.callerSharePercent) / 100))) {
      throw new OverloadedError(this.options.overloadRetryAfterMs, 'this caller has too many commands in flight at the shard, retry later');
    }
    this.total++;
    if (caller !== undefined) this.callers.set(caller, held + 1);
    this.gauge.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      if (caller !== undefined) {
        const left = (this.callers.get(caller) ?? 1) - 1;
        if (left === 0) this.callers.delete(caller);
        else this.callers.set(caller, left);
      }
      this.gauge.dec();
    };
  }
}

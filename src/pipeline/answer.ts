/**
 * The one place a command of the pipeline gets its answer (`answer`), so
 * "every command is answered exactly once" is a property of `nextStep`'s
 * steps, not of each branch that ends a round.
 */
import type { AnyDecider } from '../domain/decider.js';
import { ShardwriteError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { traceFields } from '../observability/tracing.js';
import type { PersonalData } from '../privacy/personal-data.js';
import type { EventReader } from '../store/types.js';
import type { AggregateLoader } from './loader.js';
import type { Answer, Appended } from './round.js';

/** What answering needs: duplicates read their original events. */
export interface AnswerDeps {
  readonly reader: EventReader;
  readonly loader: AggregateLoader;
  readonly logger: Logger;
  readonly personalData?: PersonalData;
}

/**
 * The one place a command is answered: with its decision (an append with
 * the round's `appended` events), or an error. Duplicates last: they read
 * the original events, which may be in this very append.
 */
export async function answer(deps: AnswerDeps, streamId: string, decider: AnyDecider, answers: readonly Answer[], appended?: Appended): Promise<void> {
  for (const a of answers) {
    if (a.kind === 'error') {
      a.p.reject(a.error);
    } else if (a.kind === 'failed') {
      if (!(a.error instanceof ShardwriteError)) deps.logger.error({ err: a.error, streamId, ...traceFields(a.p.span) }, 'decider threw an unexpected error');
      a.p.reject(a.error);
    } else if (a.kind === 'append') {
      if (!appended) {
        a.p.reject(new Error('a command decided to append was answered without its append'));
        continue;
      }
      const events = a.events.map((e, i) => {
        const version = a.firstVersion + i;
        return {
          streamId,
          version,
          type: e.type,
          schemaVersion: e.schemaVersion,
          data: e.data,
          metadata: e.metadata,
          position: appended.positions[version - appended.first] ?? 0n,
          recordedAt: appended.recordedAt,
        };
      });
      a.p.resolve({ streamId, version: a.firstVersion + a.events.length - 1, events, duplicate: false });
    }
  }
  for (const a of answers) {
    if (a.kind !== 'duplicate') continue;
    try {
      // Only the original command's events: a long stream is not read to its end for a retry.
      let stored = await deps.reader.readStream(streamId, a.versions.firstVersion, a.versions.lastVersion);
      if (deps.personalData) stored = await deps.personalData.reveal(decider, stored);
      const events = stored.map((e) => deps.loader.upcastEvent(decider, e));
      a.p.resolve({ streamId, version: a.versions.lastVersion, events, duplicate: true });
    } catch (err) {
      a.p.reject(err);
    }
  }
}

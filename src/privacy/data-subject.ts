/**
 * `data-subject`: a data subject's erasures as a stream of its own
 * (`data-subject-<subject id>`, on the shard that owns the subject id), so
 * subscribers and read models learn of an erasure (`SubjectErased`) like of
 * any other fact. The keys themselves live in the ring database
 * (`PgSubjectKeyStore`); this stream records what was done to them.
 */
import type { Command, Decider, DomainEvent } from '../domain/decider.js';
import { BusinessRuleError } from '../errors.js';

/** The aggregate type; streams are `data-subject-<subject id>`. */
export const DATA_SUBJECT = 'data-subject';

export type EraseSubject = Command<'EraseSubject', { readonly subjectId: string }>;
export type ReenableSubject = Command<'ReenableSubject', { readonly subjectId: string }>;
export type DataSubjectCommand = EraseSubject | ReenableSubject;

export type SubjectErased = DomainEvent<'SubjectErased', { readonly subjectId: string; readonly erasedAt: string }>;
export type SubjectReenabled = DomainEvent<'SubjectReenabled', { readonly subjectId: string; readonly reenabledAt: string }>;
export type DataSubjectEvent = SubjectErased | SubjectReenabled;

export interface DataSubjectState {
  readonly erased: boolean;
}

/** The subject already is in the state a command asks for: nothing to record. */
export class NothingToDoError extends BusinessRuleError {
  constructor(message: string) {
    super(message);
    this.name = 'NothingToDoError';
  }
}

/**
 * - `EraseSubject` → `SubjectErased`, unless erased (NothingToDoError).
 * - `ReenableSubject` → `SubjectReenabled`, only when erased (else NothingToDoError).
 */
export const dataSubject: Decider<DataSubjectCommand, DataSubjectEvent, DataSubjectState> = {
  aggregateType: DATA_SUBJECT,
  stateSchemaVersion: 1,
  eventSchemaVersions: {},
  upcasters: {},
  initialState: () => ({ erased: false }),
  decide(command, state) {
    const at = command.context.at;
    if (command.type === 'EraseSubject') {
      if (state.erased) throw new NothingToDoError('the subject is already erased');
      return [{ type: 'SubjectErased', data: { subjectId: command.data.subjectId, erasedAt: at } }];
    }
    if (!state.erased) throw new NothingToDoError('the subject is not erased');
    return [{ type: 'SubjectReenabled', data: { subjectId: command.data.subjectId, reenabledAt: at } }];
  },
  evolve: (_state, event) => ({ erased: event.type === 'SubjectErased' }),
};

/**
 * Erasing a data subject, in two phases, each idempotent, so an erasure
 * interrupted anywhere is finished by running it again:
 *
 * 1. **Destroy the key.** The subject's row in the ring database loses its
 *    wrapped key and becomes a tombstone, and every shard is told (NOTIFY, in
 *    the same transaction) to drop its cached copy; this shard drops its own
 *    at once. From here on no process can decrypt the subject's fields, and
 *    none can create a new key for it.
 * 2. **Record it.** `SubjectErased` is appended to `data-subject-<id>` through
 *    the pipeline, for subscribers and read models; when the stream already
 *    says erased, nothing is appended (`changed` false).
 *
 * Nothing else holds the subject's personal data in plaintext: deciders keep
 * none in their state (so snapshots, the owner cache and Redis hold none),
 * and the feed encodes a personal event again once a key may have changed.
 */
import type { CommandSpec, RoutedCommand } from '../domain/module.js';
import { checkId, requireMessage, throwIfViolations } from '../domain/validation.js';
import type { FieldViolation } from '../errors.js';
import { UnauthenticatedError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { CallContext, CommandPipeline } from '../pipeline/pipeline.js';
import type { EventReader } from '../store/types.js';
import { randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES } from './cipher.js';
import { DATA_SUBJECT, NothingToDoError, type DataSubjectCommand } from './data-subject.js';
import type { KeyProvider } from './key-provider.js';
import type { PgSubjectKeyStore } from './key-store.js';
import type { SubjectKeys } from './subject-keys.js';

/** What an erasure (or re-enabling) did. */
export interface SubjectOutcome {
  readonly subjectId: string;
  /** The version of `data-subject-<id>` afterwards. */
  readonly version: number;
  /** False when the subject already was in the state asked for. */
  readonly changed: boolean;
  readonly erased: boolean;
}

export interface ErasureDeps {
  readonly store: PgSubjectKeyStore;
  readonly keys: SubjectKeys;
  readonly provider: KeyProvider;
  readonly pipeline: CommandPipeline;
  readonly reader: EventReader;
  readonly logger: Logger;
}

function commandSpec(method: DataSubjectCommand['type']): CommandSpec {
  return {
    method,
    aggregateType: DATA_SUBJECT,
    toCommand(input: unknown): RoutedCommand {
      const request = requireMessage(input);
      const out: FieldViolation[] = [];
      const subjectId = checkId(out, 'subject_id', request.subjectId);
      throwIfViolations(out);
      return { aggregateType: DATA_SUBJECT, aggregateId: subjectId, command: { type: method, data: { subjectId } } };
    },
  };
}

const ERASE = commandSpec('EraseSubject');
const REENABLE = commandSpec('ReenableSubject');

export class Erasure {
  constructor(private readonly deps: ErasureDeps) {}

  /**
   * Erases `request.subjectId` (see the module comment). The caller was
   * authorized as an admin by the permission table.
   *
   * @throws ValidationError for a bad subject id; the store's error when the
   *   ring database or the event store is unreachable (run it again).
   */
  async erase(request: unknown, ctx: CallContext): Promise<SubjectOutcome> {
    const { subjectId } = ERASE.toCommand(request).command.data as { subjectId: string };
    const destroyed = await this.deps.store.erase(subjectId);
    this.deps.keys.forget(subjectId);
    this.deps.logger.info({ subjectId, destroyed: destroyed.destroyed }, 'data subject erased: its key is destroyed');
    return this.record(ERASE, request, subjectId, true, ctx);
  }

  /** Gives an erased subject a new key, then records `SubjectReenabled`. */
  async reenable(request: unknown, ctx: CallContext): Promise<SubjectOutcome> {
    const { subjectId } = REENABLE.toCommand(request).command.data as { subjectId: string };
    const wrapped = await this.deps.provider.wrap(subjectId, randomBytes(DATA_KEY_BYTES));
    const changed = await this.deps.store.reenable(subjectId, wrapped, this.deps.provider.keyId);
    this.deps.keys.forget(subjectId);
    if (changed) this.deps.logger.info({ subjectId }, 'data subject re-enabled with a new key');
    return this.record(REENABLE, request, subjectId, false, ctx);
  }

  private async record(spec: CommandSpec, request: unknown, subjectId: string, erased: boolean, ctx: CallContext): Promise<SubjectOutcome> {
    if (!ctx.identity) throw new UnauthenticatedError('no credentials');
    // The stream belongs to no tenant: erasure is an operator's act over the whole service.
    const identity = { principal: ctx.identity.principal, tenant: '', scopes: [DATA_SUBJECT], ...(ctx.identity.expiresAt !== undefined ? { expiresAt: ctx.identity.expiresAt } : {}) };
    try {
      const outcome = await this.deps.pipeline.execute(spec, request, { ...ctx, identity });
      return { subjectId, version: outcome.version, changed: true, erased };
    } catch (err) {
      if (!(err instanceof NothingToDoError)) throw err;
      const events = await this.deps.reader.readStream(`${DATA_SUBJECT}-${subjectId}`);
      return { subjectId, version: events.length, changed: false, erased };
    }
  }
}

/**
 * The relay's one seam: an `EventBus` takes committed events, already
 * turned into messages, and says when it holds them durably. NATS JetStream
 * is the implementation shipped (`nats-bus.ts`); another bus only has to
 * implement this interface and be named in `config.ts`.
 */
import { TRACEPARENT, validTraceparent } from '../src/observability/tracing.js';
import type { ReceivedEvent } from '../src/client/index.js';
import { SUBJECT_METADATA_KEY } from '../src/privacy/personal-data.js';
import { DATA_SUBJECT } from '../src/privacy/data-subject.js';

/** One event as a bus message. */
export interface BusMessage {
  /** The event id: the bus's de-duplication key (JetStream's `Nats-Msg-Id`). */
  readonly id: string;
  /** Where it is published, from {@link subjectOf}. */
  readonly subject: string;
  /** The event as JSON ({@link eventEnvelope}). */
  readonly payload: Uint8Array;
  /** Small routing facts a subscriber can filter on without decoding the payload. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface EventBus {
  /** For logs: what and where, e.g. `nats nats://127.0.0.1:4222 stream SHARDWRITE`. */
  readonly description: string;
  /**
   * Resolves once the bus holds every message durably (or already held it:
   * a repeated id within the bus's de-duplication window stores nothing).
   * Messages with the same subject are stored in the order given. Rejects
   * when any is not confirmed; the caller publishes the whole batch again.
   */
  publish(messages: readonly BusMessage[]): Promise<void>;
  /**
   * Removes every message it holds that carries `dataSubject`'s personal
   * data (their {@link DATA_SUBJECT_HEADER}), for an erasure; resolves with
   * how many. Idempotent.
   */
  erase(dataSubject: string): Promise<number>;
  close(): Promise<void>;
}

/** Names the data subject whose personal data a message carries (from the event's `data_subject` metadata). */
export const DATA_SUBJECT_HEADER = 'Shardwrite-Data-Subject';

// A subject token may not hold the separator, the wildcards, whitespace or
// control characters; '%' is escaped too so that the escaping is reversible
// and two ids never share a token.
const UNSAFE = /[^\x21-\x7e]|[.*>%]/gu;

/**
 * An aggregate id or type as one subject token: every character that NATS
 * does not allow in a token (`.`, `*`, `>`, whitespace, control and
 * non-ASCII characters), and `%`, is written as `%XX` (UTF-8 bytes, upper
 * hex). Injective: distinct ids give distinct tokens.
 *
 * @throws RangeError for an empty string (a token cannot be empty).
 */
export function subjectToken(text: string): string {
  if (text === '') throw new RangeError('a subject token cannot be empty');
  return text.replace(UNSAFE, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Whether `prefix` can start a subject: dot-separated tokens of letters, digits, `_` and `-`. */
export function isValidSubjectPrefix(prefix: string): boolean {
  return prefix.length <= 128 && PREFIX.test(prefix);
}

/** `<prefix>.<aggregate_type>.<aggregate_id>`, each part a single token. */
export function subjectOf(prefix: string, event: Pick<ReceivedEvent, 'aggregateType' | 'aggregateId'>): string {
  return `${prefix}.${subjectToken(event.aggregateType)}.${subjectToken(event.aggregateId)}`;
}

/** What a bus subscriber receives: the event with its data as a JSON value. */
export function eventEnvelope(e: ReceivedEvent): object {
  return {
    eventId: e.eventId,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    streamId: e.streamId,
    version: e.version,
    type: e.type,
    schemaVersion: e.schemaVersion,
    recordedAt: e.recordedAt?.toISOString() ?? null,
    metadata: e.metadata,
    data: e.data ?? null,
    shardId: e.shardId,
  };
}

/** The message that carries `event` on a bus under `prefix`. */
export function toBusMessage(prefix: string, event: ReceivedEvent): BusMessage {
  const traceparent = validTraceparent(event.metadata?.[TRACEPARENT]);
  const dataSubject = event.metadata?.[SUBJECT_METADATA_KEY];
  return {
    id: event.eventId,
    subject: subjectOf(prefix, event),
    payload: Buffer.from(JSON.stringify(eventEnvelope(event))),
    headers: {
      'Shardwrite-Event-Type': event.type,
      'Shardwrite-Stream-Id': event.streamId,
      'Shardwrite-Version': String(event.version),
      // The trace the event was written in (I14), where a bus consumer's propagator looks for it.
      ...(traceparent ? { traceparent } : {}),
      // Whose personal data it carries, so an erasure finds it (EventBus.erase).
      ...(dataSubject ? { [DATA_SUBJECT_HEADER]: dataSubject } : {}),
    },
  };
}

/** The data subject an event erases (`SubjectErased` on its `data-subject` stream), or undefined. */
export function erasedSubject(event: Pick<ReceivedEvent, 'aggregateType' | 'type' | 'aggregateId'>): string | undefined {
  return event.aggregateType === DATA_SUBJECT && event.type === 'SubjectErased' ? event.aggregateId : undefined;
}

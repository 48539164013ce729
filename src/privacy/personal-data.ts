/**
 * Personal data in events (crypto-shredding): the fields a decider declares
 * (`Decider.personalData`) are sealed with their data subject's key before an
 * append, and opened on the way out (ReadStream, subscriptions and what reads
 * them, duplicate replies). An event that holds personal data names its
 * subject in its metadata (`data_subject`): that is the cheap check which
 * lets every other event pass untouched.
 *
 * Once a subject is erased its key is gone: its fields read as `ERASED`, and
 * a command that would write new personal data for it is refused.
 */
import type { AnyDecider, PersonalDataSpec } from '../domain/decider.js';
import { BusinessRuleError } from '../errors.js';
import type { NewEvent, StoredEvent } from '../store/types.js';
import { ERASED, isSealed, openValue, sealValue, type FieldIdentity } from './cipher.js';
import type { SubjectKey, SubjectKeys } from './subject-keys.js';

/** The metadata key naming the data subject of an event's personal fields. */
export const SUBJECT_METADATA_KEY = 'data_subject';
/** The metadata key naming the data key (its id) the fields were sealed with. */
export const KEY_METADATA_KEY = 'data_key';
const SUBJECT_MARKER = `"${SUBJECT_METADATA_KEY}"`;

/** A command that would record personal data of an erased subject (FAILED_PRECONDITION / BUSINESS_RULE). */
export class SubjectErasedError extends BusinessRuleError {
  constructor(subject: string) {
    super(`data subject ${subject} was erased: its personal data cannot be recorded until it is re-enabled`);
  }
}

/** One command's events, as the pipeline decided them. */
export interface DecidedEvents {
  readonly firstVersion: number;
  readonly events: readonly NewEvent[];
}

/** What `seal` made of a round. */
export interface Sealed {
  /** Per command, its events as stored: personal fields sealed, the subject in their metadata. */
  readonly stored: NewEvent[][];
  /** Per command, the subject it may not write (erased); such a command must be refused, its events never stored. */
  readonly refused: (string | undefined)[];
}

/** The parts of an event row (JSON text) that opening it needs. */
export interface EventText {
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
}

/**
 * Values this process sealed lately, by where they belong (stream, version,
 * field): a live subscriber reads an event moments after the pipeline sealed
 * it, and opening a field costs an AES-GCM set-up (about 5.5 µs of CPU) that
 * its plaintext, still at hand, makes unnecessary. A value is recalled only
 * for the exact sealed text it was sealed as, in the place and event type it
 * was sealed for, and only where the key it was sealed with would open it
 * (`open` checks the key first); everything is forgotten when a key may have
 * changed (an erasure).
 * @default 16,384 values
 */
export const RECENTLY_SEALED = 16_384;

interface Recalled {
  readonly sealed: string;
  readonly type: string;
  readonly value: unknown;
}

/** Where a sealed value belongs (its type is the event's at that version): a short key, cheap to hash. */
const placeOf = (at: FieldIdentity) => `${at.streamId} ${at.version} ${at.field}`;

export class PersonalData {
  /**
   * Two generations: the newest values, and the ones before them, dropped
   * whole when the newest fill up (evicting one entry at a time from the
   * front of a Map walks over the holes earlier deletions left: measured as
   * the largest single cost of a shard's PlaceOrder).
   */
  #recent = new Map<string, Recalled>();
  #older = new Map<string, Recalled>();
  #recentGeneration = -1;

  constructor(private readonly keys: SubjectKeys) {}

  /** Bumped whenever a key may have changed (an encoding made before may show what is now erased). */
  get generation(): number {
    return this.keys.generation;
  }

  /**
   * Seals the personal fields of a round's events (`streamId`'s, from each
   * command's `firstVersion`). Events without personal data are passed as
   * they are; a round without any costs no lookup.
   *
   * @throws when the keys cannot be read or created (the ring database is unreachable).
   */
  async seal(streamId: string, decider: AnyDecider, commands: readonly DecidedEvents[]): Promise<Sealed> {
    const declared = decider.personalData;
    const plain = { stored: commands.map((c) => c.events as NewEvent[]), refused: commands.map(() => undefined) };
    if (!declared) return plain;
    const subjects = new Set<string>();
    for (const c of commands) for (const e of c.events) if (declared[e.type]) subjects.add(subjectOf(declared[e.type]!, e.data, e.type));
    if (subjects.size === 0) return plain;
    const keys = await this.keys.forWriting(subjects);
    const stored: NewEvent[][] = [];
    const refused: (string | undefined)[] = [];
    for (const c of commands) {
      let refusedSubject: string | undefined;
      const events = c.events.map((e, i) => {
        const spec = declared[e.type];
        if (!spec) return e;
        const subject = subjectOf(spec, e.data, e.type);
        const key = keys.get(subject);
        if (key === undefined || key === 'erased') {
          refusedSubject = subject;
          return e;
        }
        const data = { ...(e.data as Record<string, unknown>) };
        for (const field of spec.fields) {
          if (data[field] === undefined) continue;
          const at = { streamId, version: c.firstVersion + i, type: e.type, field };
          const value = data[field];
          data[field] = sealValue(key.key, at, value);
          this.#remember(data[field] as string, at, value);
        }
        return { ...e, data, metadata: { ...e.metadata, [SUBJECT_METADATA_KEY]: subject, [KEY_METADATA_KEY]: key.id } };
      });
      stored.push(refusedSubject === undefined ? events : []);
      refused.push(refusedSubject);
    }
    return { stored, refused };
  }

  /** Opens the personal fields of stored events (`ERASED` where the key is gone). @throws when the keys cannot be read. */
  async reveal(decider: AnyDecider, events: readonly StoredEvent[]): Promise<StoredEvent[]> {
    const subjects = new Set<string>();
    for (const e of events) {
      const s = e.metadata[SUBJECT_METADATA_KEY];
      if (s !== undefined && decider.personalData?.[e.type]) subjects.add(s);
    }
    if (subjects.size === 0) return events as StoredEvent[];
    const keys = await this.keys.forReading(subjects);
    return events.map((e) => {
      const subject = e.metadata[SUBJECT_METADATA_KEY];
      const spec = decider.personalData?.[e.type];
      if (subject === undefined || !spec) return e;
      return { ...e, data: open(spec, e.data, keys.get(subject), e.metadata[KEY_METADATA_KEY], e.streamId, e.version, e.type, this.#recall) };
    });
  }

  /** The keys the personal rows among `rows` need (one lookup), for `revealText`; undefined when none has personal data. */
  async keysForRows(rows: readonly { readonly metadata: string }[]): Promise<ReadonlyMap<string, SubjectKey> | undefined> {
    let subjects: Set<string> | undefined;
    for (const row of rows) {
      const s = subjectOfText(row.metadata);
      if (s !== undefined) (subjects ??= new Set()).add(s);
    }
    return subjects ? this.keys.forReading(subjects) : undefined;
  }

  /** Whether a row (JSON text) holds personal data: its encoding depends on its subject's key. */
  isPersonal(row: { readonly metadata: string }): boolean {
    return row.metadata.includes(SUBJECT_MARKER);
  }

  /**
   * A row's data (JSON text) with its personal fields opened, using the keys
   * `keysForRows` returned; the same text when it has none.
   */
  revealText(decider: AnyDecider | undefined, row: EventText, keys: ReadonlyMap<string, SubjectKey> | undefined): string {
    const spec = decider?.personalData?.[row.type];
    if (!spec) return row.data;
    if (!row.metadata.includes(SUBJECT_MARKER)) return row.data;
    const metadata = JSON.parse(row.metadata) as Record<string, unknown>;
    const subject = metadata[SUBJECT_METADATA_KEY];
    if (typeof subject !== 'string') return row.data;
    const keyId = metadata[KEY_METADATA_KEY];
    return JSON.stringify(open(spec, JSON.parse(row.data), keys?.get(subject), typeof keyId === 'string' ? keyId : undefined, row.streamId, row.version, row.type, this.#recall));
  }

  #remember(sealed: string, at: FieldIdentity, value: unknown): void {
    this.#forgetIfKeysChanged();
    if (this.#recent.size >= RECENTLY_SEALED / 2) {
      this.#older = this.#recent;
      this.#recent = new Map();
    }
    this.#recent.set(placeOf(at), { sealed, type: at.type, value });
  }

  readonly #recall = (sealed: string, at: FieldIdentity): unknown => {
    this.#forgetIfKeysChanged();
    const place = placeOf(at);
    const hit = this.#recent.get(place) ?? this.#older.get(place);
    return hit !== undefined && hit.sealed === sealed && hit.type === at.type ? hit.value : undefined;
  };

  #forgetIfKeysChanged(): void {
    if (this.#recentGeneration === this.keys.generation) return;
    this.#recent = new Map();
    this.#older = new Map();
    this.#recentGeneration = this.keys.generation;
  }
}

function subjectOf(spec: PersonalDataSpec, data: unknown, type: string): string {
  const subject = (data as Record<string, unknown>)[spec.subjectField];
  if (typeof subject !== 'string' || subject === '') throw new Error(`${type} has no data subject in ${spec.subjectField}`);
  return subject;
}

function subjectOfText(metadata: string): string | undefined {
  if (!metadata.includes(SUBJECT_MARKER)) return undefined;
  const s = (JSON.parse(metadata) as Record<string, unknown>)[SUBJECT_METADATA_KEY];
  return typeof s === 'string' ? s : undefined;
}

/**
 * Opens the sealed fields; with no key, the subject's erased key, or a key
 * other than the one they were sealed with: ERASED. `recall` knows values
 * this process sealed lately (only asked once the key is known to open them).
 */
function open(
  spec: PersonalDataSpec,
  data: unknown,
  key: SubjectKey | undefined,
  keyId: string | undefined,
  streamId: string,
  version: number,
  type: string,
  recall: (sealed: string, at: FieldIdentity) => unknown,
): unknown {
  const out = { ...(data as Record<string, unknown>) };
  const usable = key !== undefined && key !== 'erased' && key.id === keyId ? key.key : undefined;
  for (const field of spec.fields) {
    const value = out[field];
    if (!isSealed(value)) continue;
    if (usable === undefined) {
      out[field] = ERASED;
      continue;
    }
    const at = { streamId, version, type, field };
    out[field] = recall(value, at) ?? openValue(usable, at, value);
  }
  return out;
}

/**
 * An event's data (JSON text) without its declared personal fields: for
 * copies kept elsewhere that never need them (a process manager's recorded
 * inputs), so erasure has nothing to reach there.
 */
export function withoutPersonalData(decider: AnyDecider | undefined, type: string, data: string): string {
  const spec = decider?.personalData?.[type];
  if (!spec) return data;
  const parsed = JSON.parse(data) as Record<string, unknown>;
  for (const field of spec.fields) delete parsed[field];
  return JSON.stringify(parsed);
}

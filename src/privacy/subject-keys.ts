/**
 * A shard's view of the data subjects' keys: unwrapped keys cached in memory
 * (bounded, and each for at most `ttlMs`), looked up and created in batches
 * (concurrent commands share one round trip to the ring database), and
 * forgotten the moment a subject's key changes anywhere:
 *
 * - every change is NOTIFYed by the ring database (`PgSubjectKeyStore`), and
 *   the subject's entry is dropped at once;
 * - while the LISTEN connection is down nothing is cached at all, and when it
 *   comes back everything cached before is dropped (a change may have been
 *   missed);
 * - an entry lives at most `ttlMs` anyway, a bound on any other miss.
 *
 * A subject whose row is a tombstone is `erased`: writes refuse it, reads
 * show `ERASED`. A key is created only for writing and only where no row
 * exists, so a late writer never re-creates an erased subject's key.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { StoreUnavailableError } from '../errors.js';
import type { Listening } from '../store/pg-listen.js';
import { DATA_KEY_BYTES } from './cipher.js';
import type { KeyProvider } from './key-provider.js';
import type { PgSubjectKeyStore, StoredSubjectKey } from './key-store.js';

/**
 * A usable data key and its id (a digest of the key, recorded with what it
 * sealed, so data sealed under a destroyed key reads as erased also after the
 * subject got a new one), or the subject is erased.
 */
export type SubjectKey = { readonly key: Buffer; readonly id: string } | 'erased';

export interface SubjectKeysOptions {
  /** How long an unwrapped key (or a tombstone) is cached. @default 60000 */
  readonly ttlMs?: number;
  /** Keys cached at most. @default 100000 */
  readonly maxEntries?: number;
  /** Delay before listening again after the LISTEN connection was lost. @default 1000 */
  readonly relistenMs?: number;
  readonly now?: () => number;
}

/** @default 60000 */
export const DEFAULT_KEY_TTL_MS = 60_000;
/** @default 100000 */
const DEFAULT_MAX_KEYS = 100_000;
/** @default 1000 */
const DEFAULT_RELISTEN_MS = 1000;

interface Entry {
  readonly key: SubjectKey;
  readonly until: number;
}

type Want = 'read' | 'write';

export class SubjectKeys {
  readonly #cache = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #relistenMs: number;
  readonly #now: () => number;
  /** Lookups waiting for the next batch, by subject, and the batch in flight. */
  #pending = new Map<string, { want: Want; waiters: ((r: SubjectKey | undefined | Error) => void)[] }>();
  #running = false;
  #listening: Listening | undefined;
  #relisten: NodeJS.Timeout | undefined;
  #closed = false;
  /** Bumped whenever a key may have changed: encodings made before hold what may now be erased. */
  generation = 0;

  constructor(
    private readonly store: PgSubjectKeyStore,
    private readonly provider: KeyProvider,
    private readonly logger: Logger,
    options: SubjectKeysOptions = {},
  ) {
    this.#ttlMs = options.ttlMs ?? DEFAULT_KEY_TTL_MS;
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_KEYS;
    this.#relistenMs = options.relistenMs ?? DEFAULT_RELISTEN_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Starts listening for key changes; resolves once listening (or after the first failure, which is retried). */
  async start(): Promise<void> {
    await this.#listen();
  }

  /**
   * Keys to encrypt with: a key is created for a subject that has none.
   * `erased` for a tombstoned subject.
   *
   * @throws StoreUnavailableError when the ring database cannot be reached.
   */
  async forWriting(subjects: Iterable<string>): Promise<Map<string, SubjectKey>> {
    return this.#lookup(subjects, 'write');
  }

  /** Keys to decrypt with; a subject with no row is absent. @throws StoreUnavailableError when the ring database cannot be reached. */
  async forReading(subjects: Iterable<string>): Promise<Map<string, SubjectKey>> {
    return this.#lookup(subjects, 'read');
  }

  /** Drops a subject's cached key (a change was announced, or this process erased it). */
  forget(subject: string): void {
    this.#cache.delete(subject);
    this.generation++;
  }

  /** Cached keys (tests and the erasure check). */
  get cachedSubjects(): readonly string[] {
    return [...this.#cache.keys()];
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#relisten) clearTimeout(this.#relisten);
    await this.#listening?.close();
    this.#cache.clear();
  }

  async #lookup(subjects: Iterable<string>, want: Want): Promise<Map<string, SubjectKey>> {
    const out = new Map<string, SubjectKey>();
    const waits: Promise<void>[] = [];
    const now = this.#now();
    for (const subject of subjects) {
      if (out.has(subject)) continue;
      const hit = this.#cache.get(subject);
      if (hit && hit.until > now) {
        out.set(subject, hit.key);
        continue;
      }
      waits.push(
        new Promise<void>((resolve, reject) => {
          let p = this.#pending.get(subject);
          if (!p) this.#pending.set(subject, (p = { want, waiters: [] }));
          else if (want === 'write') p.want = 'write';
          p.waiters.push((r) => {
            if (r instanceof Error) reject(r);
            else {
              if (r !== undefined) out.set(subject, r);
              resolve();
            }
          });
        }),
      );
    }
    if (waits.length === 0) return out;
    if (!this.#running) void this.#run();
    await Promise.all(waits);
    return out;
  }

  /** One round trip (two when keys are created) for everything pending; repeats while more arrived. */
  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#pending.size > 0) {
        const batch = this.#pending;
        this.#pending = new Map();
        const generation = this.generation;
        try {
          const rows = await this.#fetch(batch);
          for (const [subject, p] of batch) {
            const key = rows.get(subject);
            // A change announced while this was read may be older than what was read: don't cache it.
            if (key !== undefined && generation === this.generation && this.#listening) this.#remember(subject, key);
            for (const w of p.waiters) w(key);
          }
        } catch (err) {
          // Retryable for the caller (UNAVAILABLE), like any store outage; the cause only in the log.
          this.logger.warn({ err: (err as Error).message }, "cannot read or create data subjects' keys");
          const unavailable = new StoreUnavailableError("the data subjects' keys cannot be read", { cause: err });
          for (const p of batch.values()) for (const w of p.waiters) w(unavailable);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #fetch(batch: ReadonlyMap<string, { want: Want }>): Promise<Map<string, SubjectKey>> {
    // Writers get a key made for them in the same round trip (used only where none exists yet).
    const writing = [...batch].filter(([, p]) => p.want === 'write').map(([s]) => s);
    const reading = [...batch].filter(([, p]) => p.want === 'read').map(([s]) => s);
    const created = new Map<string, Buffer>();
    for (const s of writing) created.set(s, await this.provider.wrap(s, randomBytes(DATA_KEY_BYTES)));
    const [written, read] = await Promise.all([
      created.size > 0 ? this.store.createMissing(created, this.provider.keyId) : new Map<string, StoredSubjectKey>(),
      reading.length > 0 ? this.store.read(reading) : new Map<string, StoredSubjectKey>(),
    ]);
    const stored = new Map([...read, ...written]);
    const keys = new Map<string, SubjectKey>();
    for (const [subject, row] of stored) keys.set(subject, await this.#unwrap(subject, row));
    return keys;
  }

  async #unwrap(subject: string, row: StoredSubjectKey): Promise<SubjectKey> {
    if (row === 'erased') return 'erased';
    const key = await this.provider.unwrap(subject, row.wrapped);
    return { key, id: createHash('sha256').update(key).digest('base64url').slice(0, 16) };
  }

  #remember(subject: string, key: SubjectKey): void {
    this.#cache.delete(subject);
    this.#cache.set(subject, { key, until: this.#now() + this.#ttlMs });
    if (this.#cache.size > this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#listening = await this.store.listen(
        (subject) => this.forget(subject),
        (err) => {
          this.#listening = undefined;
          this.#dropAll();
          this.logger.warn({ err: err.message }, 'lost the subject-key notifications: caching no keys until they are back');
          this.#scheduleListen();
        },
      );
      // Whatever was cached before listening may have missed a change.
      this.#dropAll();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot listen for subject-key changes yet: caching no keys until then');
      this.#scheduleListen();
    }
  }

  #scheduleListen(): void {
    if (this.#closed) return;
    this.#relisten = setTimeout(() => void this.#listen(), this.#relistenMs);
    this.#relisten.unref();
  }

  #dropAll(): void {
    this.#cache.clear();
    this.generation++;
  }
}

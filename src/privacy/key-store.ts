/**
 * Data subjects' keys in the ring database (`subject_keys`, ring migration 7):
 * the one place every shard reads, since a subject's orders are spread over
 * many shards. Keys are stored wrapped by the master key (`KeyProvider`);
 * an erased subject keeps a tombstone row without a key.
 *
 * Every change is announced on `SUBJECT_KEYS_CHANNEL` (NOTIFY, in the same
 * transaction) with the subject as payload, so every shard drops what it
 * cached of that subject's key.
 */
import pg from 'pg';
import { listen, type Listening } from '../store/pg-listen.js';

/** The NOTIFY channel of key changes (erasure, re-enabling); the payload is the subject id. */
export const SUBJECT_KEYS_CHANNEL = 'shardwrite_subject_keys';

/** A subject's row: its wrapped key, or `erased` (a tombstone). */
export type StoredSubjectKey = { readonly wrapped: Buffer; readonly masterKeyId: string } | 'erased';

/** What `erase` did. */
export interface ErasureRecord {
  /** False when the subject was already erased (nothing changed). */
  readonly destroyed: boolean;
  readonly erasedAt: Date;
}

export interface SubjectKeyStoreOptions {
  readonly connectionString: string;
  /** Bound on connecting and each statement. @default 5000 */
  readonly timeoutMs?: number;
  readonly onIdleError?: (err: Error) => void;
}

/** @default 5000 */
const DEFAULT_TIMEOUT_MS = 5000;

export class PgSubjectKeyStore {
  readonly #pool: pg.Pool;
  readonly #options: SubjectKeyStoreOptions;

  constructor(options: SubjectKeyStoreOptions) {
    this.#options = options;
    const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
      application_name: 'shardwrite-subject-keys',
    });
    this.#pool.on('error', (err) => options.onIdleError?.(err));
  }

  /** The rows of `subjects`; a subject with no row is absent. */
  async read(subjects: readonly string[]): Promise<Map<string, StoredSubjectKey>> {
    const r = await this.#pool.query<{ subject_id: string; wrapped_key: Buffer | null; master_key_id: string | null }>(
      'SELECT subject_id, wrapped_key, master_key_id FROM subject_keys WHERE subject_id = ANY($1::text[])',
      [subjects],
    );
    return new Map(r.rows.map((row) => [row.subject_id, row.wrapped_key ? { wrapped: row.wrapped_key, masterKeyId: row.master_key_id ?? '' } : 'erased']));
  }

  /**
   * Creates the keys of the subjects that have no row (`created`: subject →
   * wrapped key) and returns every subject's row, in one round trip: with many
   * shards creating a subject's key at once, the first insert wins and
   * everyone uses its key; a tombstone is never replaced (ON CONFLICT DO
   * NOTHING). A row another transaction committed while this statement ran
   * is invisible to it, so those few are read again. Rows are inserted in
   * subject order, so two shards creating overlapping sets wait for each
   * other instead of deadlocking on the unique index.
   */
  async createMissing(created: ReadonlyMap<string, Buffer>, masterKeyId: string): Promise<Map<string, StoredSubjectKey>> {
    const subjects = [...created.keys()];
    const r = await this.#pool.query<{ subject_id: string; wrapped_key: Buffer | null; master_key_id: string | null }>(
      `WITH ins AS (
         INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id)
         SELECT s, k, $3 FROM unnest($1::text[], $2::bytea[]) AS t(s, k) ORDER BY s COLLATE "C"
         ON CONFLICT (subject_id) DO NOTHING
         RETURNING subject_id, wrapped_key, master_key_id)
       SELECT subject_id, wrapped_key, master_key_id FROM ins
       UNION ALL
       SELECT subject_id, wrapped_key, master_key_id FROM subject_keys WHERE subject_id = ANY($1::text[])`,
      [subjects, subjects.map((s) => created.get(s)!), masterKeyId],
    );
    const rows = new Map(r.rows.map((row) => [row.subject_id, row.wrapped_key ? { wrapped: row.wrapped_key, masterKeyId: row.master_key_id ?? '' } : ('erased' as const)]));
    const unseen = subjects.filter((s) => !rows.has(s));
    if (unseen.length > 0) for (const [s, row] of await this.read(unseen)) rows.set(s, row);
    return rows;
  }

  /**
   * Destroys the subject's key (the row stays as a tombstone; one is written
   * for a subject that never had a key, so none can be created later) and
   * announces it, in one transaction. Idempotent.
   */
  async erase(subject: string): Promise<ErasureRecord> {
    return this.#transaction(async (client) => {
      const before = await client.query<{ had_key: boolean }>('SELECT wrapped_key IS NOT NULL AS had_key FROM subject_keys WHERE subject_id = $1 FOR UPDATE', [subject]);
      const r = await client.query<{ erased_at: Date }>(
        `INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id, erased_at) VALUES ($1, NULL, NULL, now())
         ON CONFLICT (subject_id) DO UPDATE SET wrapped_key = NULL, master_key_id = NULL, erased_at = COALESCE(subject_keys.erased_at, now())
         RETURNING erased_at`,
        [subject],
      );
      await client.query('SELECT pg_notify($1, $2)', [SUBJECT_KEYS_CHANNEL, subject]);
      return { destroyed: before.rows[0]?.had_key ?? true, erasedAt: r.rows[0]!.erased_at };
    });
  }

  /**
   * Gives an erased subject a new key (its old data stays unreadable) and
   * announces it. Returns false when the subject was not erased.
   */
  async reenable(subject: string, wrapped: Buffer, masterKeyId: string): Promise<boolean> {
    return this.#transaction(async (client) => {
      const r = await client.query('UPDATE subject_keys SET wrapped_key = $2, master_key_id = $3, erased_at = NULL WHERE subject_id = $1 AND erased_at IS NOT NULL', [subject, wrapped, masterKeyId]);
      if (r.rowCount === 0) return false;
      await client.query('SELECT pg_notify($1, $2)', [SUBJECT_KEYS_CHANNEL, subject]);
      return true;
    });
  }

  /** LISTENs for key changes: each changed subject, until closed or lost (then `onLost`, once). */
  listen(onSubject: (subject: string) => void, onLost: (err: Error) => void): Promise<Listening> {
    return listen({
      connectionString: this.#options.connectionString,
      connectionTimeoutMillis: this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      channel: SUBJECT_KEYS_CHANNEL,
      applicationName: 'shardwrite-subject-keys-listen',
      onPayload: onSubject,
      onLost,
    });
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
}

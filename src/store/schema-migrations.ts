/**
 * Numbered schema migrations, as the event store, the ring and the consumer
 * groups each keep them: a table of its own recording what was applied, and
 * an advisory lock of its own, so processes starting together take turns and
 * each migration is applied exactly once.
 */
import type pg from 'pg';

/** One schema change. Versions are applied in ascending order, each once. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** A schema that evolves by migrations. */
export interface MigratedSchema {
  /** What the errors call it (`event store`, `ring`, …). */
  readonly label: string;
  /** The table recording the applied migrations. */
  readonly table: string;
  /** The key of the transaction-scoped advisory lock the migrations run under. */
  readonly lockKey: number;
}

/**
 * Applies, inside the caller's transaction, each of `migrations` not yet
 * recorded, in version order, and returns the versions it applied.
 * @throws Error when a recorded migration's name differs from the code's
 *   (someone edited an applied one, or this code does not know the schema).
 */
export async function applyPending(client: pg.ClientBase, schema: MigratedSchema, migrations: readonly Migration[]): Promise<number[]> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [schema.lockKey]);
  // Under the lock, so two processes never race on creating it; only when missing, so a
  // least-privilege role (no CREATE) can check a migrated schema.
  const table = await client.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [schema.table]);
  if (!table.rows[0]?.exists) {
    await client.query(`
      CREATE TABLE ${schema.table} (
        version    int         PRIMARY KEY,
        name       text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
  }
  const done = await client.query<{ version: number; name: string }>(`SELECT version, name FROM ${schema.table}`);
  const recorded = new Map(done.rows.map((r) => [r.version, r.name]));
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const name = recorded.get(m.version);
    if (name !== undefined) {
      if (name !== m.name) throw new Error(`${schema.label} migration ${m.version} was applied as "${name}", but the code calls it "${m.name}"`);
      continue;
    }
    await client.query(m.sql);
    await client.query(`INSERT INTO ${schema.table} (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    applied.push(m.version);
  }
  return applied;
}

/**
 * Whether every one of `migrations` is recorded as applied — read only, for a
 * login that may not migrate (it waits for the owner's migration step). A
 * missing table, or one the login may not read, is "not yet".
 */
export async function isCurrent(client: Pick<pg.ClientBase, 'query'>, schema: MigratedSchema, migrations: readonly Migration[]): Promise<boolean> {
  try {
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema.table}`);
    const recorded = new Set(rows.map((r) => r.version));
    return migrations.every((m) => recorded.has(m.version));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === '42P01' || code === '42501') return false; // undefined_table, insufficient_privilege
    throw err;
  }
}

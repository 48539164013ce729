/**
 * `shardwrite migrate`: the deployment's one-shot migration step, run as the
 * databases' owner before any process starts (a compose service the others
 * depend on, a Kubernetes Job), so the processes themselves log in as
 * least-privilege users that may not create or alter anything:
 *
 * - every event store named by STORE_DATABASE_URLS: its migrations (which
 *   also create the group roles and their grants, src/store/migrations.ts);
 * - the ring database, RING_DATABASE_URL: the ring's migrations (roles for
 *   shards, the rebalancer, routers and the pm worker), the consumer groups'
 *   tables, and the first ring from RING_BOOTSTRAP when it is empty;
 * - on every server among those, the login users: for each of shard, router,
 *   rebalancer and pm, MIGRATE_<KIND>_USER with MIGRATE_<KIND>_PASSWORD is
 *   created (or its password set) as a member of its group role only. Unset:
 *   the logins are someone else's (a managed PostgreSQL's operator declares
 *   them). Roles belong to the server, so each server gets all of them.
 *
 * `shardwrite migrate --wait` is the other side, run by each process's init
 * container under the process's own login: it waits, reading only, until the
 * schemas that process uses (DATABASE_URL's event store, RING_DATABASE_URL's
 * ring, with --groups the consumer groups' tables too) are at this code's
 * version — which also proves the login exists and may connect.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { EnvReader, envNames, text } from '../src/config.js';
import { PM_ROLE, REBALANCER_ROLE, ROUTER_ROLE, SHARD_ROLE, migrate, storeSchemaIsCurrent } from '../src/store/index.js';
import { createRolesSql } from '../src/store/roles.js';
import { redactDatabaseUrl } from '../src/store/database-url.js';
import { PgRingStore, parseRingBootstrap, ringSchemaIsCurrent, type RingDocument } from '../src/ring/index.js';
import { groupSchemaIsCurrent, migrateGroupSchema } from '../router/consumer-groups/schema.js';
import type { Output } from './ring.js';

export const MIGRATE_USAGE = `  migrate               as the databases' owner: migrate every event store (STORE_DATABASE_URLS, comma-
                        separated) and the ring database (RING_DATABASE_URL; RING_BOOTSTRAP seeds an empty
                        ring), and create the login users MIGRATE_{SHARD,ROUTER,REBALANCER,PM}_USER with
                        MIGRATE_…_PASSWORD, each in its role only
  migrate --wait [--groups]  under a process's own login: wait until DATABASE_URL's and RING_DATABASE_URL's
                        schemas (with --groups the consumer groups' too) are migrated`;

/** The login users `migrate` makes: the env prefix of each and the one group role it joins. */
export const LOGIN_KINDS = [
  { kind: 'SHARD', role: SHARD_ROLE },
  { kind: 'ROUTER', role: ROUTER_ROLE },
  { kind: 'REBALANCER', role: REBALANCER_ROLE },
  { kind: 'PM', role: PM_ROLE },
] as const;

/** Every variable `migrate` reads (`--wait` reads DATABASE_URL and RING_DATABASE_URL). */
export const MIGRATE_SETTINGS = {
  STORE_DATABASE_URLS: text(),
  RING_DATABASE_URL: text(),
  RING_BOOTSTRAP: text(),
  DATABASE_URL: text(),
  MIGRATE_SHARD_USER: text(),
  MIGRATE_SHARD_PASSWORD: text(),
  MIGRATE_ROUTER_USER: text(),
  MIGRATE_ROUTER_PASSWORD: text(),
  MIGRATE_REBALANCER_USER: text(),
  MIGRATE_REBALANCER_PASSWORD: text(),
  MIGRATE_PM_USER: text(),
  MIGRATE_PM_PASSWORD: text(),
} as const;

/** The names of {@link MIGRATE_SETTINGS}. */
export const MIGRATE_ENV = envNames(MIGRATE_SETTINGS);

type MigrateName = keyof typeof MIGRATE_SETTINGS;

/**
 * How often `--wait` looks again.
 * @default 2000
 */
export const MIGRATE_WAIT_INTERVAL_MS = 2000;

interface Login {
  readonly user: string;
  readonly password: string;
  readonly role: string;
}

interface MigrateSettings {
  readonly storeUrls: readonly string[];
  readonly ringUrl: string | undefined;
  readonly bootstrap: RingDocument | undefined;
  readonly logins: readonly Login[];
}

const USER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

function readSettings(env: NodeJS.ProcessEnv): MigrateSettings {
  const r = new EnvReader(env, MIGRATE_SETTINGS);
  const storeUrls = (r.optionalString('STORE_DATABASE_URLS') ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const ringUrl = r.optionalString('RING_DATABASE_URL');
  if (storeUrls.length === 0 && ringUrl === undefined) r.problem('set STORE_DATABASE_URLS and/or RING_DATABASE_URL (the owner’s URLs of what to migrate)');
  let bootstrap: RingDocument | undefined;
  const bootstrapText = r.optionalString('RING_BOOTSTRAP');
  if (bootstrapText !== undefined) {
    if (ringUrl === undefined) r.problem('RING_BOOTSTRAP needs RING_DATABASE_URL');
    try {
      bootstrap = parseRingBootstrap(bootstrapText);
    } catch (err) {
      r.problem(`RING_BOOTSTRAP: ${(err as Error).message}`);
    }
  }
  const logins: Login[] = [];
  for (const { kind, role } of LOGIN_KINDS) {
    const user = r.optionalString(`MIGRATE_${kind}_USER` as MigrateName);
    const password = r.optionalString(`MIGRATE_${kind}_PASSWORD` as MigrateName);
    if (user === undefined && password === undefined) continue;
    if (user === undefined || password === undefined) {
      r.problem(`MIGRATE_${kind}_USER and MIGRATE_${kind}_PASSWORD go together`);
      continue;
    }
    // Never a group role, never the owner: a login that is exactly its role's member.
    if (!USER_PATTERN.test(user) || user.startsWith('pg_') || user.startsWith('shardwrite_')) {
      r.problem(`MIGRATE_${kind}_USER must be a lower-case identifier not starting with pg_ or shardwrite_ (got "${user}")`);
      continue;
    }
    if (!/^[\x21-\x7e]{8,}$/.test(password)) {
      r.problem(`MIGRATE_${kind}_PASSWORD must be at least 8 printable ASCII characters without spaces (it goes into connection URLs)`);
      continue;
    }
    logins.push({ user, password, role });
  }
  const users = logins.map((l) => l.user);
  if (new Set(users).size !== users.length) r.problem('each MIGRATE_…_USER must be a different user: one login, one role');
  r.done();
  return { storeUrls, ringUrl, bootstrap, logins };
}

/** Creates `login` on the server behind `client`, or sets its password, and makes it a member of its role only. */
async function ensureLogin(client: pg.Client, login: Login, owner: string): Promise<void> {
  if (login.user === owner) throw new Error(`${login.user} is the owner's login; each process needs a login of its own`);
  // Statements built by the server's own quoting (%I, %L). The password goes as its SCRAM
  // verifier, made here: the statement text (which log_statement may log) never holds it.
  const exists = await client.query<{ exists: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists', [login.user]);
  const { rows } = await client.query<{ sql: string }>(
    exists.rows[0]?.exists
      ? `SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', $1::text, $2::text) AS sql`
      : `SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text) AS sql`,
    [login.user, scramVerifier(login.password)],
  );
  await client.query(rows[0]!.sql);
  await client.query(`SELECT format('GRANT %I TO %I', $1::text, $2::text) AS sql`, [login.role, login.user]).then((r: pg.QueryResult<{ sql: string }>) => client.query(r.rows[0]!.sql));
  // A login of one kind only: leave any other shardwrite role it was given.
  const others = await client.query<{ role: string }>(
    `SELECT g.rolname AS role FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
     WHERE u.rolname = $1 AND g.rolname LIKE 'shardwrite\\_%' AND g.rolname <> $2`,
    [login.user, login.role],
  );
  for (const o of others.rows) {
    const revoke = await client.query<{ sql: string }>(`SELECT format('REVOKE %I FROM %I', $1::text, $2::text) AS sql`, [o.role, login.user]);
    await client.query(revoke.rows[0]!.sql);
  }
}

/**
 * Iterations of the SCRAM-SHA-256 verifiers `migrate` makes (PostgreSQL's own default).
 * @default 4096
 */
export const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL keeps for `password` (RFC 5802/7677, the
 * format of pg_authid.rolpassword), which `CREATE ROLE … PASSWORD` takes as it is.
 * Passwords are printable ASCII (checked at start-up), so SASLprep changes nothing.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

async function withClient<T>(url: string, run: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'shardwrite-migrate' });
  client.on('error', () => {});
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The owner's step: migrations, the first ring, the logins. Resolves with the exit code. */
async function migrateAll(settings: MigrateSettings, out: Output): Promise<number> {
  for (const url of settings.storeUrls) {
    const applied = await migrate(url);
    out.line(`event store ${redactDatabaseUrl(url)}: ${applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`}`);
  }
  if (settings.ringUrl !== undefined) {
    const ring = new PgRingStore({ connectionString: settings.ringUrl });
    try {
      await ring.migrate();
      if (settings.bootstrap) {
        const doc = await ring.initIfEmpty(settings.bootstrap);
        out.line(`ring at epoch ${doc.epoch}: ${doc.shards.map((s) => s.id).join(', ')}`);
      }
    } finally {
      await ring.close();
    }
    const pool = new pg.Pool({ connectionString: settings.ringUrl, max: 1, application_name: 'shardwrite-migrate' });
    try {
      await migrateGroupSchema(pool);
    } finally {
      await pool.end();
    }
    out.line(`ring database ${redactDatabaseUrl(settings.ringUrl)}: up to date`);
  }
  if (settings.logins.length > 0) {
    for (const url of [...settings.storeUrls, ...(settings.ringUrl === undefined ? [] : [settings.ringUrl])]) {
      await withClient(url, async (c) => {
        const owner = (await c.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;
        await c.query(createRolesSql(LOGIN_KINDS.map((l) => l.role)));
        for (const login of settings.logins) await ensureLogin(c, login, owner);
      });
      out.line(`logins on ${redactDatabaseUrl(url)}: ${settings.logins.map((l) => `${l.user} (${l.role})`).join(', ')}`);
    }
  }
  return 0;
}

/** One look: which of the schemas `--wait` waits for are not ready yet (a name each), or a connection problem. */
async function notReady(env: NodeJS.ProcessEnv, groups: boolean): Promise<string[]> {
  const waiting: string[] = [];
  const look = async (url: string, what: string, checks: ((c: pg.Client) => Promise<boolean>)[]) => {
    try {
      await withClient(url, async (c) => {
        for (const check of checks) if (!(await check(c))) waiting.push(`${what} ${redactDatabaseUrl(url)} (not migrated yet)`);
      });
    } catch (err) {
      // 28P01 / 28000: the login does not exist yet (the migration step makes it) or its password is not the one set.
      const code = (err as { code?: unknown }).code;
      waiting.push(`${what} ${redactDatabaseUrl(url)} (${typeof code === 'string' ? `SQLSTATE ${code}` : 'unreachable'})`);
    }
  };
  if (env.DATABASE_URL) await look(env.DATABASE_URL, 'event store', [storeSchemaIsCurrent]);
  if (env.RING_DATABASE_URL) await look(env.RING_DATABASE_URL, 'ring', groups ? [ringSchemaIsCurrent, groupSchemaIsCurrent] : [ringSchemaIsCurrent]);
  return waiting;
}

/** Runs `shardwrite migrate <args>` and resolves with the exit code. */
export async function migrateCommand(args: readonly string[], env: NodeJS.ProcessEnv, out: Output, signal?: AbortSignal, intervalMs = MIGRATE_WAIT_INTERVAL_MS): Promise<number> {
  const wait = args.includes('--wait');
  const groups = args.includes('--groups');
  if (args.some((a) => a !== '--wait' && a !== '--groups') || (groups && !wait)) {
    out.error(`usage:\n${MIGRATE_USAGE}`);
    return 2;
  }
  if (!wait) {
    let settings: MigrateSettings;
    try {
      settings = readSettings(env);
    } catch (err) {
      out.error((err as Error).message);
      return 2;
    }
    try {
      return await migrateAll(settings, out);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      out.error(`migration failed: ${(err as Error).message}${typeof code === 'string' ? ` (SQLSTATE ${code})` : ''}`);
      return 1;
    }
  }
  if (!env.DATABASE_URL && !env.RING_DATABASE_URL) {
    out.error('migrate --wait: set DATABASE_URL and/or RING_DATABASE_URL (the process’s own logins)');
    return 2;
  }
  let last = '';
  for (;;) {
    const waiting = await notReady(env, groups);
    if (waiting.length === 0) {
      out.line('schemas migrated; starting');
      return 0;
    }
    const text = `waiting for ${waiting.join(', ')}`;
    if (text !== last) out.line(text);
    last = text;
    if (signal?.aborted) return 1;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (signal?.aborted) return 1;
  }
}

/**
 * `shardwrite migrate`, the deployments' one-shot owner step, against a real
 * PostgreSQL: it migrates an event store and a ring database, seeds the ring,
 * and makes one login per process kind, each in its own role only; the
 * processes' `migrate --wait` waits for it under their own logins. The pm
 * worker's login (role shardwrite_pm, ring migration 8) runs the worker's
 * store and is refused everything else of the ring database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { migrateCommand } from '../../cli/migrate.js';
import type { Output } from '../../cli/ring.js';
import { PgRingStore } from '../../src/ring/index.js';
import { PM_ROLE, REBALANCER_ROLE, ROUTER_ROLE, SHARD_ROLE } from '../../src/store/index.js';
import { PgPmStore } from '../../pm-worker/store.js';
import { createTestDatabase, serverUrl, sqlState, withClient, type TestDatabase } from '../support/pg.js';
import { startOwnPostgres } from '../support/postgres-process.js';

let store: TestDatabase;
let ring: TestDatabase;
const suffix = randomBytes(4).toString('hex');
const users = { SHARD: `sw_mig_shard_${suffix}`, ROUTER: `sw_mig_router_${suffix}`, REBALANCER: `sw_mig_rebalancer_${suffix}`, PM: `sw_mig_pm_${suffix}` };
const passwords = {
  SHARD: `pw-shard-${randomBytes(8).toString('hex')}`,
  ROUTER: `pw-router-${randomBytes(8).toString('hex')}`,
  REBALANCER: `pw-reb-${randomBytes(8).toString('hex')}`,
  PM: `pw-pm-${randomBytes(8).toString('hex')}`,
};
type Kind = keyof typeof users;

function captured(): Output & { lines: string[] } {
  const lines: string[] = [];
  return { lines, tty: false, line: (t) => void lines.push(t), error: (t) => void lines.push(`E ${t}`) };
}

function urlAs(kind: Kind, on: TestDatabase, password: string = passwords[kind]): string {
  const u = new URL(on.url);
  u.username = users[kind];
  u.password = password;
  return u.toString();
}

function ownerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { STORE_DATABASE_URLS: store.url, RING_DATABASE_URL: ring.url, RING_BOOTSTRAP: 'shard-0=shard-0.shard:50051' };
  for (const k of Object.keys(users) as Kind[]) {
    env[`MIGRATE_${k}_USER`] = users[k];
    env[`MIGRATE_${k}_PASSWORD`] = passwords[k];
  }
  return { ...env, ...extra };
}

/** Whether a PostgreSQL SCRAM-SHA-256 verifier (pg_authid.rolpassword) is of `password`. */
function scramMatches(verifier: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!m) return false;
  const salted = pbkdf2Sync(password, Buffer.from(m[2]!, 'base64'), Number(m[1]), 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
  const serverKey = createHmac('sha256', salted).update('Server Key').digest('base64');
  return storedKey === m[3] && serverKey === m[4];
}

beforeAll(async () => {
  store = await createTestDatabase('sw_migrate_store');
  ring = await createTestDatabase('sw_migrate_ring');
});

afterAll(async () => {
  await store?.drop();
  await ring?.drop();
  await withClient(serverUrl(), async (c) => {
    for (const u of Object.values(users)) await c.query(`DROP ROLE IF EXISTS ${u}`);
  });
});

describe('shardwrite migrate', () => {
  it('lets a process wait under its own login until the owner has migrated, then go', async () => {
    const out = captured();
    const waiting = new AbortController();
    const shardWait = migrateCommand(['--wait'], { DATABASE_URL: urlAs('SHARD', store), RING_DATABASE_URL: urlAs('SHARD', ring) }, out, waiting.signal, 50);
    await new Promise((r) => setTimeout(r, 300));
    waiting.abort();
    // No login yet, nothing migrated: it waits (and would have gone on waiting), naming what for.
    expect(await shardWait).toBe(1);
    expect(out.lines[0]).toMatch(/^waiting for event store .*\(SQLSTATE 28[0-9A-Z]{3}\), ring .*\(SQLSTATE 28[0-9A-Z]{3}\)$/);

    const owner = captured();
    expect(await migrateCommand([], ownerEnv(), owner)).toBe(0);
    expect(owner.lines.join('\n')).toContain(`${users.SHARD} (${SHARD_ROLE})`);
    expect(owner.lines.join('\n')).toContain('ring at epoch 1: shard-0');
    for (const p of Object.values(passwords)) expect([...owner.lines, ...out.lines].join('\n')).not.toContain(p);

    const go = captured();
    expect(await migrateCommand(['--wait'], { DATABASE_URL: urlAs('SHARD', store), RING_DATABASE_URL: urlAs('SHARD', ring) }, go)).toBe(0);
    expect(await migrateCommand(['--wait', '--groups'], { RING_DATABASE_URL: urlAs('ROUTER', ring) }, go)).toBe(0);
    expect(await migrateCommand(['--wait'], { RING_DATABASE_URL: urlAs('PM', ring) }, go)).toBe(0);
    expect(await migrateCommand(['--wait'], { DATABASE_URL: urlAs('REBALANCER', store), RING_DATABASE_URL: urlAs('REBALANCER', ring) }, go)).toBe(0);
  });

  it('makes each login a member of its own role only, never a superuser or a role maker', async () => {
    await withClient(serverUrl(), async (c) => {
      const { rows } = await c.query<{ user: string; roles: string[]; super: boolean; createrole: boolean; createdb: boolean }>(
        `SELECT u.rolname AS user, u.rolsuper AS super, u.rolcreaterole AS createrole, u.rolcreatedb AS createdb,
                array(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = u.oid ORDER BY 1)::text[] AS roles
         FROM pg_roles u WHERE u.rolname = ANY($1) ORDER BY u.rolname`,
        [Object.values(users)],
      );
      const byUser = new Map(rows.map((r) => [r.user, r]));
      const expected: Record<Kind, string> = { SHARD: SHARD_ROLE, ROUTER: ROUTER_ROLE, REBALANCER: REBALANCER_ROLE, PM: PM_ROLE };
      for (const k of Object.keys(users) as Kind[]) {
        const r = byUser.get(users[k])!;
        expect(r.roles).toEqual([expected[k]]);
        expect([r.super, r.createrole, r.createdb]).toEqual([false, false, false]);
      }
    });
  });

  it('runs again as a no-op that sets new passwords (rotation) and takes away a role given by hand', async () => {
    await withClient(serverUrl(), (c) => c.query(`GRANT ${SHARD_ROLE} TO ${users.PM}`));
    const rotated = `pw-pm-rotated-${randomBytes(8).toString('hex')}`;
    const out = captured();
    expect(await migrateCommand([], ownerEnv({ MIGRATE_PM_PASSWORD: rotated }), out)).toBe(0);
    expect(out.lines.join('\n')).toMatch(/event store .*: up to date/);
    expect(out.lines.join('\n')).not.toContain(rotated);
    // The shared test server trusts loopback, so the password is checked where the server keeps it: a SCRAM verifier of the new one
    // (made by migrate itself, so the statement never carried the password).
    const verifier = await withClient(serverUrl(), async (c) => (await c.query<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [users.PM])).rows[0]!.v);
    expect(scramMatches(verifier, rotated)).toBe(true);
    // The check itself agrees with PostgreSQL's own verifiers.
    const own = await withClient(serverUrl(), async (c) => {
      await c.query(`SET password_encryption = 'scram-sha-256'`);
      await c.query(`ALTER ROLE ${users.ROUTER} PASSWORD '${passwords.ROUTER}'`);
      return (await c.query<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [users.ROUTER])).rows[0]!.v;
    });
    expect(scramMatches(own, passwords.ROUTER)).toBe(true);
    expect(scramMatches(verifier, passwords.PM)).toBe(false);
    const roles = await withClient(
      serverUrl(),
      async (c) =>
        (await c.query<{ r: string }>('SELECT g.rolname AS r FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1', [users.PM])).rows,
    );
    expect(roles).toEqual([{ r: PM_ROLE }]);
    passwords.PM = rotated;
  });

  it("runs the pm worker's store under the pm login, and refuses that login the ring, the keys, the groups and DDL", async () => {
    const pm = new PgPmStore({ connectionString: urlAs('PM', ring) });
    try {
      await pm.migrate(); // the tables exist (ring migration 8): nothing to create
      await pm.arm('order-fulfilment', 'o-1', [{ name: 'payment', id: 'payment', dueAt: new Date(Date.now() - 1000).toISOString() }]);
      expect(await pm.due(10)).toEqual([{ processManager: 'order-fulfilment', instanceId: 'o-1', timeoutId: 'payment' }]);
      await pm.disarm('order-fulfilment', 'o-1', ['payment']);
      expect(await pm.due(10)).toEqual([]);
      await pm.recordStatuses([{ streamId: 'pm-o-1', processManager: 'order-fulfilment', instanceId: 'o-1', status: 'running', version: 1 }]);
      await pm.recordStatuses([{ streamId: 'pm-o-1', processManager: 'order-fulfilment', instanceId: 'o-1', status: 'completed', version: 2 }]);
      expect((await pm.list()).map((r) => [r.streamId, r.status, r.version])).toEqual([['pm-o-1', 'completed', 2]]);
    } finally {
      await pm.close();
    }
    await withClient(urlAs('PM', ring), async (c) => {
      expect(await sqlState(c.query('SELECT * FROM ring_epochs'))).toBe('42501');
      expect(await sqlState(c.query(`INSERT INTO ring_epochs (epoch, shards) VALUES (99, '[]')`))).toBe('42501');
      expect(await sqlState(c.query('SELECT * FROM shard_stores'))).toBe('42501');
      expect(await sqlState(c.query('SELECT * FROM subject_keys'))).toBe('42501');
      expect(await sqlState(c.query('SELECT * FROM consumer_groups'))).toBe('42501');
      expect(await sqlState(c.query('DELETE FROM pm_instances'))).toBe('42501');
      expect(await sqlState(c.query('TRUNCATE pm_timeouts'))).toBe('42501');
      expect(await sqlState(c.query('CREATE TABLE pm_extra (x int)'))).toBe('42501');
      expect(await sqlState(c.query('DROP TABLE pm_timeouts'))).toBe('42501');
    });
    // Nor the event store: the pm login is the ring database's only.
    expect(await sqlState(withClient(urlAs('PM', store), (c) => c.query('SELECT * FROM events')))).toBe('42501');
  });

  it('gives the router login the ring to read and nothing to write, and the shard login no pm tables', async () => {
    const router = new PgRingStore({ connectionString: urlAs('ROUTER', ring) });
    try {
      expect((await router.current())?.epoch).toBe(1);
    } finally {
      await router.close();
    }
    await withClient(urlAs('ROUTER', ring), async (c) => {
      expect(await sqlState(c.query(`INSERT INTO ring_epochs (epoch, shards) VALUES (2, '[]')`))).toBe('42501');
      expect(await sqlState(c.query('SELECT * FROM subject_keys'))).toBe('42501');
      expect(await sqlState(c.query('SELECT * FROM pm_timeouts'))).toBe('42501');
    });
    await withClient(urlAs('SHARD', ring), async (c) => {
      expect(await sqlState(c.query('SELECT * FROM pm_instances'))).toBe('42501');
      expect(await sqlState(c.query(`INSERT INTO ring_epochs (epoch, shards) VALUES (2, '[]')`))).toBe('42501');
    });
  });

  it('makes logins that a server checking passwords admits with theirs and refuses with any other', async () => {
    // The shared test server trusts loopback; this one of the test's own asks for passwords.
    const server = await startOwnPostgres();
    try {
      const out = captured();
      const env = { STORE_DATABASE_URLS: server.url, MIGRATE_SHARD_USER: users.SHARD, MIGRATE_SHARD_PASSWORD: passwords.SHARD };
      expect(await migrateCommand([], env, out)).toBe(0);
      const as_ = (password: string) => {
        const u = new URL(server.url);
        u.username = users.SHARD;
        u.password = password;
        return u.toString();
      };
      expect(await withClient(as_(passwords.SHARD), async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u)).toBe(users.SHARD);
      expect(await sqlState(withClient(as_(`${passwords.SHARD}-not`), (c) => c.query('SELECT 1')))).toBe('28P01');
      expect(await sqlState(withClient(as_(passwords.SHARD), (c) => c.query(`UPDATE events SET type = 'Forged'`)))).toBe('42501');
    } finally {
      await server.stop();
    }
  });

  it("refuses the owner's own login as a process login, and a user that is a group role's name", async () => {
    const owner = new URL(store.url).username;
    const out = captured();
    expect(await migrateCommand([], { STORE_DATABASE_URLS: store.url, MIGRATE_SHARD_USER: owner, MIGRATE_SHARD_PASSWORD: 'x'.repeat(12) }, out)).toBe(1);
    expect(out.lines.join('\n')).toContain("is the owner's login");
    const bad = captured();
    expect(await migrateCommand([], { STORE_DATABASE_URLS: store.url, MIGRATE_SHARD_USER: SHARD_ROLE, MIGRATE_SHARD_PASSWORD: 'x'.repeat(12), MIGRATE_PM_USER: 'u' }, bad)).toBe(2);
    expect(bad.lines.join('\n')).toMatch(/MIGRATE_SHARD_USER must be .*MIGRATE_PM_USER and MIGRATE_PM_PASSWORD go together/s);
    const short = captured();
    expect(await migrateCommand([], { STORE_DATABASE_URLS: store.url, MIGRATE_SHARD_USER: 'sw_x', MIGRATE_SHARD_PASSWORD: 'pass word with spaces' }, short)).toBe(2);
    expect(short.lines.join('\n')).toContain('MIGRATE_SHARD_PASSWORD must be at least 8 printable ASCII characters');
    expect(short.lines.join('\n')).not.toContain('pass word');
  });
});

/**
 * docker-compose.yml checked offline: against the Compose specification's
 * schema, and against what the code reads — the router and shard services get
 * only variables their config module reads, with values it accepts, wired to
 * the databases, Redis and ports that exist in the file.
 */
import { PM_WORKER_ENV, loadPmWorkerConfig } from '../../pm-worker/config.js';
import { MIGRATE_ENV } from '../../cli/migrate.js';
import { processManagers } from '../../src/process-managers/index.js';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeSchemaValidator, interpolate, readComposeYaml, serviceEnv, type ComposeService } from './support/compose.js';
import { ROLES, hostOf, isRole, portOf, type Role, type RoleSettings } from './support/roles.js';
import { expectThrow } from '../support/expect-error.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const raw = readComposeYaml(join(ROOT, 'docker-compose.yml'));
/** The secrets compose requires (`${NAME:?…}`): a deployment's own, never a default. */
const REQUIRED_SECRETS = {
  AUTH_TOKENS: `sha256:${'ab'.repeat(32)}:svc:tenant-a:*`,
  REDIS_SNAPSHOT_KEY: 'k'.repeat(44),
  PERSONAL_DATA_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
  PM_TOKEN: 'pm-token',
  SHARD_DB_PASSWORD: 'shard-db-password',
  ROUTER_DB_PASSWORD: 'router-db-password',
  REBALANCER_DB_PASSWORD: 'rebalancer-db-password',
  PM_DB_PASSWORD: 'pm-db-password',
  REDIS_PASSWORD: 'redis-password',
};
/** The login each process kind connects to PostgreSQL with, and its password; never the owner. */
const LOGINS = {
  shard: { user: 'shard', password: REQUIRED_SECRETS.SHARD_DB_PASSWORD, migrate: 'SHARD' },
  router: { user: 'router', password: REQUIRED_SECRETS.ROUTER_DB_PASSWORD, migrate: 'ROUTER' },
  rebalancer: { user: 'rebalancer', password: REQUIRED_SECRETS.REBALANCER_DB_PASSWORD, migrate: 'REBALANCER' },
  pm: { user: 'pm_worker', password: REQUIRED_SECRETS.PM_DB_PASSWORD, migrate: 'PM' },
} as const;
/** With only the required secrets set: every other `${…}` must have a working default. */
const unresolved: string[] = [];
const compose = interpolate(raw, REQUIRED_SECRETS, unresolved);
const services = compose.services;

function roleOf(s: ComposeService): Role | undefined {
  const cmd = Array.isArray(s.command) ? s.command : s.command?.split(/\s+/);
  return isRole(cmd?.[0]) ? cmd[0] : undefined;
}

const ours = Object.entries(services)
  .map(([name, s]) => ({ name, service: s, role: roleOf(s) }))
  .filter((x): x is { name: string; service: ComposeService; role: Role } => x.role !== undefined);

function settingsOf(name: string): RoleSettings {
  const x = ours.find((o) => o.name === name)!;
  return ROLES[x.role].load(serviceEnv(x.service));
}

/** Seconds of a Compose duration (`30s`, `1m30s`). */
function seconds(d: string): number {
  let total = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  return total;
}

function dependsOn(s: ComposeService): Record<string, string> {
  const d = s.depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, 'service_started'])) : Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.condition]));
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification schema', () => {
    const validate = composeSchemaValidator(join(ROOT, 'test/deploy/schemas'));
    expect(validate(compose)).toEqual([]);
    // The validator does catch mistakes.
    expect(validate({ services: { a: { image: 'x', depends_on: { b: { condition: 'service_ready' } } } } })).not.toEqual([]);
  });

  it('runs with only the required secrets set: every other interpolation has a default', () => {
    expect(unresolved).toEqual([]);
  });

  it('refuses to start without its secrets, naming each one', () => {
    for (const name of Object.keys(REQUIRED_SECRETS)) {
      const others = Object.fromEntries(Object.entries(REQUIRED_SECRETS).filter(([k]) => k !== name));
      expectThrow(() => interpolate(raw, others), new RegExp(`^${name}: set ${name}`));
    }
  });

  it('ships secure: every router and shard runs with TLS, from certificates the certs service makes, with authentication and never in insecure mode', () => {
    const certs = services.certs!;
    expect(certs.command?.[0]).toBe('certs');
    const dir = certs.command![1] as string;
    const made = new Set((certs.command as string[]).slice(2).map((n) => n.split(',')[0]));
    const volume = (certs.volumes as string[]).find((v) => v.endsWith(`:${dir}`))!.split(':')[0]!;
    expect(Object.keys(compose.volumes ?? {})).toContain(volume);
    for (const { name, service, role } of ours) {
      const env = serviceEnv(service);
      expect(env.SHARDWRITE_INSECURE ?? 'false', `${name}: insecure mode`).not.toBe('true');
      expect(dependsOn(service).certs, `${name} waits for its certificates`).toBe('service_completed_successfully');
      expect(service.volumes, `${name} mounts the certificates read-only`).toContain(`${volume}:${dir}:ro`);
      for (const key of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE']) expect(env[key], `${name}: ${key}`).toMatch(new RegExp(`^${dir}/`));
      expect(env.TLS_CA_FILE).toBe(`${dir}/ca.crt`);
      expect(env.TLS_CERT_FILE).toBe(`${dir}/${name}.crt`);
      expect(env.TLS_KEY_FILE).toBe(`${dir}/${name}.key`);
      expect(made.has(name), `certs makes ${name}'s certificate`).toBe(true);
      // Authentication: every AUTH_* setting the role's config reads that compose can give.
      const auth = ROLES[role].env.filter((k) => k.startsWith('AUTH_'));
      if (auth.length > 0)
        expect(
          auth.some((k) => (env[k] ?? '') !== ''),
          `${name}: authentication configured`,
        ).toBe(true);
      if (role === 'shard') expect(env.REDIS_SNAPSHOT_KEY).toBe(REQUIRED_SECRETS.REDIS_SNAPSHOT_KEY);
      if (role === 'shard') expect(env.PERSONAL_DATA_MASTER_KEY).toBe(REQUIRED_SECRETS.PERSONAL_DATA_MASTER_KEY);
    }
  });

  it('runs a router, three shards, one PostgreSQL per shard and Redis, from official images', () => {
    expect(ours.filter((o) => o.role === 'router').map((o) => o.name)).toEqual(['router']);
    expect(ours.filter((o) => o.role === 'shard').map((o) => o.name)).toEqual(['shard-0', 'shard-1', 'shard-2']);
    for (const k of [0, 1, 2]) expect(services[`postgres-${k}`]?.image).toMatch(/^postgres:\d+/);
    expect(services.redis?.image).toMatch(/^redis:\d/);
  });

  it("builds the router and shards from this repository's Dockerfile and runs the role given as the argument", () => {
    for (const { service, role } of ours) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      expect(build?.context).toBe('.');
      expect(existsSync(join(ROOT, build!.context!, (build as { dockerfile?: string }).dockerfile ?? 'Dockerfile'))).toBe(true);
      expect(service.entrypoint, "keeps the image's ENTRYPOINT").toBeUndefined();
      expect(service.command).toEqual([role]);
      expect(service.image).toBe(ours[0]!.service.image);
    }
  });

  it('gives the router and shards only variables their config module reads, with values it accepts', () => {
    for (const { name, service, role } of ours) {
      const env = serviceEnv(service);
      for (const key of Object.keys(env)) expect(ROLES[role].env, `${name}: ${key}`).toContain(key);
      const s = ROLES[role].load(env);
      expect(hostOf(s.grpcAddress), `${name} listens on every interface of its container`).toBe('0.0.0.0');
      expect(s.metricsAddress && hostOf(s.metricsAddress)).toBe('0.0.0.0');
      if (role === 'shard') expect(s.shardId).toBe(name);
    }
  });

  it("connects shard n to postgres-n's database under the shard's own login, never the owner's", () => {
    const dbs = new Set<string>();
    for (const { name } of ours.filter((o) => o.role === 'shard')) {
      const s = settingsOf(name);
      const url = new URL(s.databaseUrl!);
      expect(url.hostname).toBe(name.replace('shard-', 'postgres-'));
      dbs.add(url.hostname);
      const pg = serviceEnv(services[url.hostname]!);
      expect(decodeURIComponent(url.username)).toBe(LOGINS.shard.user);
      expect(decodeURIComponent(url.username)).not.toBe(pg.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(LOGINS.shard.password);
      expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
      expect(Number(url.port)).toBe(5432);
    }
    expect(dbs.size).toBe(3);
  });

  it('migrates as the owner in a one-shot step that every process waits for, making exactly the logins they use', () => {
    const migrate = services.migrate!;
    expect(migrate.command).toEqual(['migrate']);
    expect(migrate.image).toBe(ours[0]!.service.image);
    expect(migrate.restart).toBe('no');
    const env = serviceEnv(migrate);
    for (const key of Object.keys(env)) expect(MIGRATE_ENV, `migrate: ${key}`).toContain(key);
    const owner = serviceEnv(services['postgres-0']!);
    // Every store the shards use, and the ring, migrated under the owner's login.
    const stores = env.STORE_DATABASE_URLS!.split(',').map((u) => new URL(u));
    const shardStores = ours.filter((o) => o.role === 'shard').map((o) => new URL(settingsOf(o.name).databaseUrl!));
    expect(stores.map((u) => `${u.host}${u.pathname}`).sort()).toEqual(shardStores.map((u) => `${u.host}${u.pathname}`).sort());
    const ring = new URL(env.RING_DATABASE_URL!);
    expect(`${ring.host}${ring.pathname}`).toBe(`${new URL(settingsOf('router').ringDatabaseUrl!).host}/shardwrite_ring`);
    for (const u of [...stores, ring]) {
      expect(decodeURIComponent(u.username)).toBe(owner.POSTGRES_USER);
      expect(decodeURIComponent(u.password)).toBe(owner.POSTGRES_PASSWORD);
    }
    expect(env.RING_BOOTSTRAP).toBe(serviceEnv(services.router!).RING_BOOTSTRAP);
    for (const login of Object.values(LOGINS)) {
      expect(env[`MIGRATE_${login.migrate}_USER`]).toBe(login.user);
      expect(env[`MIGRATE_${login.migrate}_PASSWORD`]).toBe(login.password);
    }
    for (const k of [0, 1, 2]) expect(dependsOn(migrate)[`postgres-${k}`]).toBe('service_healthy');
    // It runs before every process, and only it knows the owner's password.
    for (const name of [...ours.map((o) => o.name), 'pm-worker', 'rebalancer']) {
      expect(dependsOn(services[name]!).migrate, `${name} waits for the migration`).toBe('service_completed_successfully');
      for (const [key, value] of Object.entries(serviceEnv(services[name]!)).filter(([, v]) => v.startsWith('postgres'))) {
        expect(value, `${name}: ${key} has no owner's login`).not.toContain(`//${owner.POSTGRES_USER}:`);
        expect(value, `${name}: ${key} has no owner's password`).not.toContain(`:${owner.POSTGRES_PASSWORD}@`);
      }
    }
  });

  it('reaches Redis only over TLS, with an ACL user and the certificate the certs service makes for it', () => {
    for (const { name } of ours.filter((o) => o.role === 'shard')) {
      const s = settingsOf(name);
      const url = new URL(s.redisUrl!);
      expect(url.protocol, name).toBe('rediss:');
      expect([url.hostname, url.port]).toEqual(['redis', '6379']);
      expect(decodeURIComponent(url.username)).toBe('shardwrite');
      expect(decodeURIComponent(url.password)).toBe(REQUIRED_SECRETS.REDIS_PASSWORD);
      expect(serviceEnv(services[name]!).REDIS_CA_FILE).toBe('/var/lib/shardwrite/tls/ca.crt');
    }
    const redis = services.redis!;
    const script = (redis.command as string[]).join(' ');
    expect(script).toMatch(/--port 0 /);
    expect(script).toMatch(/--tls-port 6379 /);
    expect(script).toContain('--tls-cert-file /var/lib/shardwrite/tls/redis.crt');
    expect(script).toContain('--tls-key-file /var/lib/shardwrite/tls/redis.key');
    expect(script).toContain('user default off');
    expect(script).toContain('user shardwrite on #');
    expect(script).not.toContain(REQUIRED_SECRETS.REDIS_PASSWORD);
    expect(serviceEnv(redis).REDIS_PASSWORD).toBe(REQUIRED_SECRETS.REDIS_PASSWORD);
    expect((services.certs!.command as string[]).slice(2)).toContain('redis');
    expect(dependsOn(redis).certs).toBe('service_completed_successfully');
    expect(JSON.stringify(redis.healthcheck!.test)).toContain('--tls');
  });

  it("runs `ring add|remove` under the rebalancer's own login and certificate, started only on demand", () => {
    const rebalancer = services.rebalancer!;
    expect(rebalancer.profiles).toEqual(['rebalance']);
    expect((rebalancer.command as string[])[0]).toBe('ring');
    const env = serviceEnv(rebalancer);
    const ring = new URL(env.RING_DATABASE_URL!);
    expect([decodeURIComponent(ring.username), decodeURIComponent(ring.password)]).toEqual([LOGINS.rebalancer.user, LOGINS.rebalancer.password]);
    expect(env.SHARD_DATABASE_USER).toBe(LOGINS.rebalancer.user);
    expect(env.PGPASSWORD).toBe(LOGINS.rebalancer.password);
    expect(env.TLS_CERT_FILE).toBe('/var/lib/shardwrite/tls/rebalancer.crt');
    expect((services.certs!.command as string[]).slice(2)).toContain('rebalancer');
  });

  it('puts the ring database on postgres-0, created there by the init script, and gives everyone the same ring under its own login', () => {
    const at = (u: string) => `${new URL(u).host}${new URL(u).pathname}`;
    const urls = new Set(ours.map((o) => at(settingsOf(o.name).ringDatabaseUrl!)));
    expect(urls.size).toBe(1);
    const ring = new URL(settingsOf('router').ringDatabaseUrl!);
    expect(ring.hostname).toBe('postgres-0');
    expect(ring.pathname).toBe('/shardwrite_ring');
    const pg0 = services['postgres-0']!;
    // The script creates the database on the instance whose host name ends in -0.
    expect(pg0.hostname).toBe('postgres-0');
    const mount = (pg0.volumes ?? []).find((v) => typeof v === 'string' && v.includes('/docker-entrypoint-initdb.d/')) as string;
    expect(mount).toBeDefined();
    expect(existsSync(join(ROOT, mount.split(':')[0]!))).toBe(true);
    for (const { name, role } of ours) {
      const u = new URL(settingsOf(name).ringDatabaseUrl!);
      expect([decodeURIComponent(u.username), decodeURIComponent(u.password)], name).toEqual([LOGINS[role].user, LOGINS[role].password]);
    }
    const bootstraps = new Set(ours.map((o) => JSON.stringify(settingsOf(o.name).ringBootstrap)));
    expect(bootstraps.size).toBe(1);
    // Each shard at its service name and the port it listens on.
    const expected = ours.filter((o) => o.role === 'shard').map((o) => ({ id: o.name, address: `${o.name}:${portOf(settingsOf(o.name).grpcAddress)}` }));
    expect(settingsOf('router').ringBootstrap).toEqual(expected);
  });

  it('starts each process only once the databases and Redis it uses are healthy', () => {
    const healthy = (name: string) => expect(services[name]?.healthcheck, `${name} has a health check`).toBeDefined();
    for (const { name, role } of ours) {
      const deps = dependsOn(services[name]!);
      const s = settingsOf(name);
      const needs = [new URL(s.ringDatabaseUrl!).hostname];
      if (role === 'shard') needs.push(new URL(s.databaseUrl!).hostname, new URL(s.redisUrl!).hostname);
      for (const n of needs) {
        expect(deps[n], `${name} waits for ${n}`).toBe('service_healthy');
        healthy(n);
      }
      if (role === 'router') for (const shard of ours.filter((o) => o.role === 'shard')) expect(deps[shard.name]).toBeDefined();
    }
    // "Healthy" means the real server is up: over TCP, not the socket of the init-time server.
    for (const k of [0, 1, 2]) expect(JSON.stringify(services[`postgres-${k}`]!.healthcheck!.test)).toContain('127.0.0.1');
  });

  it("keeps each PostgreSQL's data in a named volume of its own", () => {
    const volumes = [0, 1, 2].map((k) => (services[`postgres-${k}`]!.volumes as string[]).find((v) => v.endsWith(':/var/lib/postgresql/data'))!.split(':')[0]!);
    expect(new Set(volumes).size).toBe(3);
    for (const v of volumes) expect(Object.keys(compose.volumes ?? {})).toContain(v);
  });

  it('publishes the router on 50051, the port it listens on, and nothing else', () => {
    const router = services.router!;
    const grpc = portOf(settingsOf('router').grpcAddress);
    expect(router.ports).toEqual([`127.0.0.1:50051:${grpc}`]);
    for (const { name } of ours.filter((o) => o.role === 'shard')) expect(services[name]!.ports).toBeUndefined();
  });

  it('runs the pm worker with only variables its config reads, against the router and the ring database, once both are up', () => {
    const worker = services['pm-worker']!;
    expect(worker.command).toEqual(['pm-worker']);
    expect(worker.image).toBe(ours[0]!.service.image);
    const env = serviceEnv(worker);
    const reads = new Set<string>([...PM_WORKER_ENV, ...processManagers.flatMap((d) => d.settingsEnv)]);
    for (const key of Object.keys(env)) expect(reads.has(key), `pm-worker: ${key}`).toBe(true);
    const config = loadPmWorkerConfig(env, processManagers);
    const url = new URL(config.databaseUrl);
    expect(`${url.host}${url.pathname}`).toBe(`${new URL(settingsOf('router').ringDatabaseUrl!).host}/shardwrite_ring`);
    expect([decodeURIComponent(url.username), decodeURIComponent(url.password)]).toEqual([LOGINS.pm.user, LOGINS.pm.password]);
    expect(config.source).toBe(`router:${portOf(settingsOf('router').grpcAddress)}`);
    expect(dependsOn(worker)).toMatchObject({ 'postgres-0': 'service_healthy', router: 'service_started' });
    expect(worker.read_only).toBe(true);
  });

  it('runs the router and shards read-only, without capabilities, and stops them after their drain', () => {
    for (const { name, service } of ours) {
      expect(service.read_only, name).toBe(true);
      expect(service.cap_drop).toEqual(['ALL']);
      expect(service.security_opt).toContain('no-new-privileges:true');
      expect(seconds(service.stop_grace_period!) * 1000 - settingsOf(name).shutdownGraceMs, `${name}: time to flush after the drain`).toBeGreaterThanOrEqual(5000);
    }
  });
});

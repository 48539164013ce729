/**
 * A whole cluster of real processes on loopback for the fault and fuzz tests:
 * a ring database, N shard processes (each on its own event store) and a
 * router, all spawned with tsx. Every shard and the router listen on a port
 * chosen up front, so a killed process can be restarted at the same address
 * (the ring names addresses) and callers reconnect to it.
 */
import { PgRingStore, RingView, parseRingBootstrap, type RingDocument } from '../../../src/ring/index.js';
import { createTestDatabase, type TestDatabase } from '../../support/pg.js';
import { freePort } from '../../support/postgres-process.js';
import { startProcess, type ServiceProcess } from '../../support/processes.js';
import type { ShardStore } from '../../support/checker.js';

export interface ClusterOptions {
  /** Number of shards; default 3. */
  readonly shards?: number;
  /** A shard's event store; `undefined` (the default) = a fresh database on the machine's server, dropped on close. */
  readonly databaseUrl?: (index: number) => string | undefined | Promise<string | undefined>;
  /** Extra environment of shard `index` (on every start). */
  readonly shardEnv?: (index: number) => Record<string, string>;
  /** Extra environment of the router. */
  readonly routerEnv?: Record<string, string>;
}

export interface ShardHandle {
  readonly index: number;
  readonly id: string;
  /** `127.0.0.1:<port>`, the same across restarts. */
  readonly address: string;
  readonly databaseUrl: string;
  /** The running process (a new one after `restart`). */
  process: ServiceProcess;
  /** Starts the shard again on the same address and database (after a kill). */
  restart(extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  /** Environment the shard is started with. */
  env(): Record<string, string>;
}

export interface Cluster {
  readonly ringUrl: string;
  /** The ring the cluster was bootstrapped with (epoch 1). */
  readonly ring: RingDocument;
  readonly shards: ShardHandle[];
  /** The router's address, the same across restarts. */
  readonly routerAddress: string;
  router: ServiceProcess;
  restartRouter(): Promise<ServiceProcess>;
  /** Which shard owns an order at the bootstrap epoch. */
  ownerOf(orderId: string): string;
  /** The stores of all shards, for the checker. */
  stores(): ShardStore[];
  /** The processes currently expected to run that have exited. */
  dead(): string[];
  /** A ring store on the ring database (closed by `close`). */
  ringStore(): PgRingStore;
  close(): Promise<void>;
}

const SHARD_ENV_DEFAULTS: Record<string, string> = {
  RING_POLL_MS: '500',
  LOG_LEVEL: 'warn',
  METRICS_ADDRESS: 'off',
};

/** Starts a ring database, the shards and a router; `close()` stops everything and drops the databases. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const n = options.shards ?? 3;
  const databases: TestDatabase[] = [];
  const ringDb = await createTestDatabase('sw_ring');
  databases.push(ringDb);
  const ports = await Promise.all(Array.from({ length: n + 1 }, () => freePort()));
  const addresses = ports.slice(0, n).map((p) => `127.0.0.1:${p}`);
  const routerAddress = `127.0.0.1:${ports[n]}`;
  const bootstrap = addresses.map((a, i) => `shard-${i}=${a}`).join(',');
  const ring = parseRingBootstrap(bootstrap);
  const view = new RingView(ring);
  let ringStore: PgRingStore | undefined;

  const dbUrls: string[] = [];
  for (let i = 0; i < n; i++) {
    const own = await options.databaseUrl?.(i);
    if (own !== undefined) dbUrls.push(own);
    else {
      const db = await createTestDatabase('sw_fault');
      databases.push(db);
      dbUrls.push(db.url);
    }
  }

  const shards: ShardHandle[] = [];
  const processes: ServiceProcess[] = [];
  const track = (p: ServiceProcess) => {
    processes.push(p);
    return p;
  };

  try {
    const started = await Promise.all(
      addresses.map(async (address, i) => {
        const env = (): Record<string, string> => ({
          ...SHARD_ENV_DEFAULTS,
          SHARD_ID: `shard-${i}`,
          GRPC_ADDRESS: address,
          DATABASE_URL: dbUrls[i]!,
          RING_DATABASE_URL: ringDb.url,
          RING_BOOTSTRAP: bootstrap,
          ...(options.shardEnv?.(i) ?? {}),
        });
        const proc = track(await startProcess('shard/main.ts', env()));
        const handle: ShardHandle = {
          index: i,
          id: `shard-${i}`,
          address,
          databaseUrl: dbUrls[i]!,
          process: proc,
          env,
          async restart(extraEnv = {}) {
            if (handle.process.child.exitCode === null && handle.process.child.signalCode === null) {
              handle.process.signal('SIGKILL');
              await handle.process.exited;
            }
            handle.process = track(await startProcess('shard/main.ts', { ...env(), ...extraEnv }));
            return handle.process;
          },
        };
        return handle;
      }),
    );
    shards.push(...started);
  } catch (err) {
    await Promise.all(processes.map((p) => p.stop(2000)));
    for (const db of databases) await db.drop().catch(() => {});
    throw err;
  }

  const routerEnv = (): Record<string, string> => ({
    GRPC_ADDRESS: routerAddress,
    RING_DATABASE_URL: ringDb.url,
    RING_BOOTSTRAP: bootstrap,
    RING_POLL_MS: '500',
    METRICS_ADDRESS: 'off',
    LOG_LEVEL: 'warn',
    SHARD_RECONNECT_MAX_MS: '500',
    ...(options.routerEnv ?? {}),
  });
  const startRouter = () => startProcess('test/faults/support/router-entry.ts', routerEnv());
  let router: ServiceProcess;
  try {
    router = track(await startRouter());
  } catch (err) {
    await Promise.all(processes.map((p) => p.stop(2000)));
    for (const db of databases) await db.drop().catch(() => {});
    throw err;
  }

  const cluster: Cluster = {
    ringUrl: ringDb.url,
    ring,
    shards,
    routerAddress,
    router,
    async restartRouter() {
      const old = cluster.router;
      if (old.child.exitCode === null && old.child.signalCode === null) {
        old.signal('SIGKILL');
        await old.exited;
      }
      cluster.router = track(await startRouter());
      return cluster.router;
    },
    ownerOf: (orderId) => view.ownerOf(orderId).id,
    stores: () => shards.map((s) => ({ shard: s.id, url: s.databaseUrl })),
    dead() {
      const current = [cluster.router, ...shards.map((s) => s.process)];
      return current.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null).map((p) => `${p.pid}: ${p.output().slice(-2000)}`);
    },
    ringStore() {
      ringStore ??= new PgRingStore({ connectionString: ringDb.url });
      return ringStore;
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop(5000)));
      await ringStore?.close();
      for (const db of databases) await db.drop().catch(() => {});
    },
  };
  return cluster;
}

/** Seconds a fault scenario runs its load, from FAULTS_SECONDS (default `fallback`). */
export function faultSeconds(fallback: number): number {
  const raw = process.env.FAULTS_SECONDS;
  const n = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

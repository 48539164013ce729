/**
 * A real cluster for end-to-end tests: a ring database, N shard processes
 * (each on its own database) and a router process, over loopback.
 */
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './pg.js';
import { startProcess, startShardProcess, type ServiceProcess } from './processes.js';
import { PgRingStore } from '../../src/ring/index.js';

export interface ClusterShard {
  readonly id: string;
  readonly db: TestDatabase;
  proc: ServiceProcess;
  /** Restarts the shard process on the same address and database. */
  restart(): Promise<void>;
}

export interface Cluster {
  readonly ringDb: TestDatabase;
  readonly shards: ClusterShard[];
  router: ServiceProcess;
  /** Restarts the router on the same address. */
  restartRouter(): Promise<void>;
  /** A pool on a shard's database, closed by `stop()`. */
  sql(shard: ClusterShard): pg.Pool;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly shards?: number;
  /** Extra environment for every shard, or per shard index. */
  readonly shardEnv?: Record<string, string> | ((index: number) => Record<string, string>);
  readonly routerEnv?: Record<string, string>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.shards ?? 3;
  const ringDb = await createTestDatabase('sw_ring');
  const dbs = await Promise.all(Array.from({ length: count }, () => createTestDatabase('sw_shard')));
  const envFor = (i: number) => (typeof options.shardEnv === 'function' ? options.shardEnv(i) : (options.shardEnv ?? {}));
  const baseEnv = (i: number, address?: string): Record<string, string> => ({
    SHARD_ID: `shard-${i}`,
    DATABASE_URL: dbs[i]!.url,
    RING_DATABASE_URL: ringDb.url,
    ...(address ? { GRPC_ADDRESS: address } : {}),
    ...envFor(i),
  });
  const procs = await Promise.all(dbs.map((_, i) => startShardProcess(baseEnv(i))));
  const store = new PgRingStore({ connectionString: ringDb.url });
  await store.migrate();
  await store.initIfEmpty({ epoch: 1, shards: procs.map((p, i) => ({ id: `shard-${i}`, address: p.address })) });
  await store.close();
  const shards: ClusterShard[] = procs.map((proc, i) => {
    const shard: ClusterShard = {
      id: `shard-${i}`,
      db: dbs[i]!,
      proc,
      async restart() {
        await shard.proc.stop(2000);
        shard.proc = await startShardProcess(baseEnv(i, proc.address));
      },
    };
    return shard;
  });
  const routerEnv = { RING_DATABASE_URL: ringDb.url, METRICS_ADDRESS: 'off', ...options.routerEnv };
  const router = await startProcess('router/main.ts', { GRPC_ADDRESS: '127.0.0.1:0', ...routerEnv });
  const pools: pg.Pool[] = [];
  const cluster: Cluster = {
    ringDb,
    shards,
    router,
    async restartRouter() {
      const address = cluster.router.address;
      await cluster.router.stop(2000);
      cluster.router = await startProcess('router/main.ts', { ...routerEnv, GRPC_ADDRESS: address });
    },
    sql(shard) {
      const pool = new pg.Pool({ connectionString: shard.db.url, max: 2 });
      pools.push(pool);
      return pool;
    },
    async stop() {
      await Promise.all([cluster.router.stop(), ...shards.map((s) => s.proc.stop())]);
      await Promise.all(pools.map((p) => p.end()));
      await Promise.all([...dbs.map((d) => d.drop()), ringDb.drop()]);
    },
  };
  return cluster;
}

/**
 * A whole cluster of real processes on loopback, for the end-to-end, fault,
 * fuzz and rebalancing tests and the benchmarks: a ring database, shard
 * processes (each on its own event store) and a router, all spawned with tsx.
 * Every process listens on a port chosen up front, so a killed one comes back
 * at the address the ring names, and callers reconnect to it.
 */
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevCertificates, type CertFiles } from '../../scripts/dev-certificates.js';
import { PgRingStore, RingView, type RingDocument } from '../../src/ring/index.js';
import type { ShardStore } from './checker.js';
import { createTestDatabase, type TestDatabase } from './pg.js';
import { freePort } from './postgres-process.js';
import { startProcess, type ServiceProcess } from './processes.js';

export interface ClusterOptions {
  /** Shards on the ring at epoch 1 (`shard-0`…); default 3. */
  readonly shards?: number;
  /** More shards after those, running on stores of their own but owning nothing (for a rebalance to add); default 0. */
  readonly spares?: number;
  /** A shard's event store; `undefined` (the default) = a fresh database on the machine's server, dropped on close. */
  readonly databaseUrl?: (index: number) => string | undefined | Promise<string | undefined>;
  /** Extra environment of every shard, or of shard `index` (on every start). */
  readonly shardEnv?: Record<string, string> | ((index: number) => Record<string, string>);
  /** Extra environment of the router. */
  readonly routerEnv?: Record<string, string>;
  /**
   * Authentication settings (AUTH_TOKENS, AUTH_JWKS_FILE, AUTH_JWT_*, …) of the
   * router and every shard. With `tls` too they start in secure mode; with
   * `auth` alone they authenticate and authorize in insecure mode (plaintext
   * is allowed only explicitly). Unset (the default): every process runs with
   * SHARDWRITE_INSECURE=true and no authentication.
   */
  readonly auth?: Record<string, string>;
  /**
   * TLS on every hop: a fresh CA and certificates (identities `router`,
   * `shard-<i>`, `rebalancer`, all for 127.0.0.1 and localhost) in a temporary
   * directory, removed on close; default false (plaintext).
   */
  readonly tls?: boolean;
}

/** The certificates of a TLS cluster. */
export interface ClusterTls {
  readonly dir: string;
  /** The CA every process trusts. */
  readonly caFile: string;
  /** Each identity's files, by name (`router`, `shard-0`, …, `rebalancer`). */
  readonly files: Readonly<Record<string, CertFiles>>;
}

/** The environment that gives a process `files` as its certificate. */
export function tlsEnv(files: CertFiles): Record<string, string> {
  return { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, TLS_CA_FILE: files.caFile };
}

export interface ClusterShard {
  readonly index: number;
  readonly id: string;
  /** `127.0.0.1:<port>`, the same across restarts. */
  readonly address: string;
  readonly databaseUrl: string;
  /** The running process (a new one after `restart`). */
  process: ServiceProcess;
  /** A pool on the shard's store, closed by `close()`. */
  readonly sql: pg.Pool;
  /** SIGKILLs the process if it runs, then starts it again on the same address and store. */
  restart(extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  /** The environment the shard starts with. */
  env(): Record<string, string>;
}

export interface Cluster {
  readonly ringUrl: string;
  /** The certificates, when the cluster runs with TLS. */
  readonly tls: ClusterTls | undefined;
  /** The ring the cluster starts with (epoch 1). */
  readonly ring: RingDocument;
  readonly ringStore: PgRingStore;
  /** The shards on the ring, then the spares. */
  readonly shards: ClusterShard[];
  /** The router's address, the same across restarts. */
  readonly routerAddress: string;
  router: ServiceProcess;
  /** SIGKILLs the router if it runs, then starts it again on the same address. */
  restartRouter(): Promise<ServiceProcess>;
  shard(id: string): ClusterShard;
  /** Which shard owns an order at epoch 1. */
  ownerOf(orderId: string): string;
  /** Every shard's store (on the ring or not), for the checker. */
  stores(): ShardStore[];
  /** The processes expected to run that have exited, with their last output. */
  dead(): string[];
  /** Stops every process and drops the databases the cluster created. */
  close(): Promise<void>;
}

const SHARD_ENV: Record<string, string> = {
  // Required in secure mode; one per test process, the same for every shard of its clusters.
  PERSONAL_DATA_MASTER_KEY: randomBytes(32).toString('base64'),
  // Test files run clusters side by side on one PostgreSQL server (max_connections 100 by default).
  DB_POOL_SIZE: '4',
  RING_POLL_MS: '500',
  LOG_LEVEL: 'warn',
  METRICS_ADDRESS: 'off',
};

const ROUTER_ENV: Record<string, string> = {
  RING_POLL_MS: '500',
  LOG_LEVEL: 'warn',
  METRICS_ADDRESS: 'off',
  SHARD_RECONNECT_MAX_MS: '500',
};

const running = (p: ServiceProcess) => p.child.exitCode === null && p.child.signalCode === null;

async function kill(p: ServiceProcess): Promise<void> {
  if (!running(p)) return;
  p.signal('SIGKILL');
  await p.exited;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const onRing = options.shards ?? 3;
  const total = onRing + (options.spares ?? 0);
  const shardEnv = (i: number) => (typeof options.shardEnv === 'function' ? options.shardEnv(i) : (options.shardEnv ?? {}));
  const databases: TestDatabase[] = [];
  const processes: ServiceProcess[] = [];
  const pools: pg.Pool[] = [];
  let tls: ClusterTls | undefined;
  if (options.tls) {
    const dir = mkdtempSync(join(tmpdir(), 'sw-tls-'));
    const local = { ips: ['127.0.0.1'], dns: ['localhost'] };
    const names = ['router', 'rebalancer', ...Array.from({ length: total }, (_, i) => `shard-${i}`)];
    const files = await ensureDevCertificates(
      dir,
      names.map((name) => ({ name, ...local })),
      'shardwrite test CA',
    );
    tls = { dir, caFile: files.router!.caFile, files };
  }
  const ringDb = await createTestDatabase('sw_ring');
  databases.push(ringDb);
  const ringStore = new PgRingStore({ connectionString: ringDb.url });
  const close = async () => {
    await Promise.all(processes.map((p) => p.stop(5000)));
    await Promise.all(pools.map((p) => p.end()));
    await ringStore.close();
    for (const db of databases) await db.drop().catch(() => {});
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  };
  const track = (p: ServiceProcess) => {
    processes.push(p);
    return p;
  };

  try {
    await ringStore.migrate();
    const urls = await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        const own = await options.databaseUrl?.(i);
        if (own !== undefined) return own;
        const db = await createTestDatabase('sw_shard');
        databases.push(db);
        return db.url;
      }),
    );
    // The ring names the shards' addresses before they start: their ports are drawn (`freePort`) just before.
    const ports = await Promise.all(Array.from({ length: total }, () => freePort()));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    const ring: RingDocument = { epoch: 1, shards: addresses.slice(0, onRing).map((address, i) => ({ id: `shard-${i}`, address })) };
    await ringStore.initIfEmpty(ring);

    const authEnv: Record<string, string> = options.auth ? { SHARDWRITE_INSECURE: options.tls ? 'false' : 'true', ...options.auth } : {};
    const shards = await Promise.all(
      addresses.map(async (address, i): Promise<ClusterShard> => {
        const env = (): Record<string, string> => ({
          ...SHARD_ENV,
          SHARD_ID: `shard-${i}`,
          GRPC_ADDRESS: address,
          DATABASE_URL: urls[i]!,
          RING_DATABASE_URL: ringDb.url,
          ...authEnv,
          ...(tls ? tlsEnv(tls.files[`shard-${i}`]!) : {}),
          ...shardEnv(i),
        });
        let sql: pg.Pool | undefined;
        const shard: ClusterShard = {
          index: i,
          id: `shard-${i}`,
          address,
          databaseUrl: urls[i]!,
          process: track(await startProcess('shard/main.ts', env())),
          get sql() {
            if (sql === undefined) pools.push((sql = new pg.Pool({ connectionString: urls[i]!, max: 3 })));
            return sql;
          },
          env,
          async restart(extraEnv = {}) {
            await kill(shard.process);
            shard.process = track(await startProcess('shard/main.ts', { ...env(), ...extraEnv }));
            return shard.process;
          },
        };
        return shard;
      }),
    );

    const routerEnv: Record<string, string> = { ...ROUTER_ENV, RING_DATABASE_URL: ringDb.url, ...authEnv, ...(tls ? tlsEnv(tls.files.router!) : {}), ...options.routerEnv };
    // The router takes a port of the system's choosing, and keeps it across restarts.
    const router = track(await startProcess('router/main.ts', { GRPC_ADDRESS: '127.0.0.1:0', ...routerEnv }));
    const routerAddress = router.address;
    routerEnv.GRPC_ADDRESS ??= routerAddress;
    const view = new RingView(ring);
    const cluster: Cluster = {
      ringUrl: ringDb.url,
      tls,
      ring,
      ringStore,
      shards,
      routerAddress,
      router,
      async restartRouter() {
        await kill(cluster.router);
        cluster.router = track(await startProcess('router/main.ts', routerEnv));
        return cluster.router;
      },
      shard(id) {
        const s = shards.find((x) => x.id === id);
        if (!s) throw new Error(`no shard ${id}`);
        return s;
      },
      ownerOf: (orderId) => view.ownerOf(orderId).id,
      stores: () => shards.map((s) => ({ shard: s.id, url: s.databaseUrl })),
      dead: () => [cluster.router, ...shards.map((s) => s.process)].filter((p) => !running(p)).map((p) => `${p.pid}: ${p.output().slice(-2000)}`),
      close,
    };
    return cluster;
  } catch (err) {
    await close();
    throw err;
  }
}

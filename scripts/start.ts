/**
 * `npm start`: a whole cluster on this machine with no other software — a
 * router on 127.0.0.1:50051 in front of N shards (default 3; `SHARDS=N` or
 * `--shards N`), each shard a process of its own on its own embedded
 * PostgreSQL (data in `.data/pg-shard-K`), and the ring in database
 * `shardwrite_ring` on shard-0's server. With DATABASE_URL set, that server
 * holds every database instead (`shardwrite_shard_K`, `shardwrite_ring`).
 *
 * Layout: shard-K listens on 127.0.0.1:(50061+K) with metrics on
 * 127.0.0.1:(9466+K), its PostgreSQL on 54330+K; the router's metrics are on
 * 127.0.0.1:9465. Process logs go to `.data/logs/`. The cluster is recorded
 * in `.data/cluster.json` (read by `shardwrite ring …`).
 *
 * `--spare N` (or `SPARES=N`) also starts N shards that are not on the ring
 * (the next ids, `shard-3`, …): running, registered, owning nothing, ready
 * for `npx shardwrite ring add` — the script prints the exact command — so a
 * rebalance can be watched on a running cluster.
 *
 * `--relay` (or NATS_URL set) also runs `shardwrite relay`: every committed
 * event is published to NATS JetStream (NATS_URL, default
 * nats://127.0.0.1:4222; the relay's other settings from the environment,
 * see relay/config.ts), log in `.data/logs/relay.log`.
 *
 * `--secure` runs the same cluster with TLS and authentication on: a local CA
 * and certificates under `.data/tls/` (reused while valid; identities
 * `router`, `shard-K`, `rebalancer`, `relay`, `pm-worker`, servers valid for localhost and
 * 127.0.0.1), the router serving TLS, router ↔ shard mutual TLS, random bearer
 * tokens in `.data/tls/admin.token` (every tenant, ring operations),
 * `tenant-a.token` and `tenant-b.token` (one tenant each; only their SHA-256
 * is handed to the processes, as AUTH_TOKENS), with REDIS_URL a snapshot key in `.data/tls/redis-snapshot.key`,
 * and the master key of the data subjects' keys in `.data/tls/personal-data-master.key`.
 * It prints how a client connects. Without it, the cluster runs in insecure
 * mode on loopback only (SHARDWRITE_INSECURE=true) and says so.
 * The process managers run in a worker process of their own, `shardwrite
 * pm-worker` (metrics on 127.0.0.1:9470, log in `.data/logs/pm-worker.log`),
 * against the router; its tables live in the ring database. The order
 * fulfilment's payment timeout is PAYMENT_TIMEOUT_MS (default 15 minutes),
 * read from this script's environment. `--no-pm` leaves it out.
 *
 * Ctrl-C stops the relay and the router first (they drain), then the
 * shards, then the PostgreSQL servers. So that Ctrl-C reaches only this script and not every
 * process at once, the script re-runs itself as a supervisor in a process
 * group of its own and forwards the signal to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded-postgres.js';
import { PgRingStore, type RingDocument, type RingShard } from '../src/ring/index.js';
import { ensureDevCertificates, type CertFiles } from './dev-certificates.js';
import { modules } from '../src/domain/index.js';
import { DEFAULT_GRPC_ADDRESS, DEFAULT_LOG_LEVEL } from '../src/config.js';
import { SERVICE_NODE_FLAGS } from '../src/process.js';
import { ROUTER_SETTINGS } from '../router/config.js';
import { PM_WORKER_DEFAULTS } from '../pm-worker/config.js';
import { RELAY_DEFAULTS } from '../relay/config.js';

const DATA_DIR = '.data';
const LOG_DIR = `${DATA_DIR}/logs`;
const CLUSTER_FILE = `${DATA_DIR}/cluster.json`;
const ROUTER_ADDRESS = DEFAULT_GRPC_ADDRESS;
const ROUTER_METRICS = ROUTER_SETTINGS.METRICS_ADDRESS.default;
const PM_METRICS = PM_WORKER_DEFAULTS.metricsAddress;
const SHARD_PORT_BASE = 50061;
const SHARD_METRICS_PORT_BASE = 9466;
const PG_PORT_BASE = 54330;
const RING_DATABASE = 'shardwrite_ring';
/** How long a stopping process may take before it is killed (its own grace period is 10 s). */
const STOP_TIMEOUT_MS = 15_000;
const SUPERVISED = 'SHARDWRITE_START_SUPERVISED';
const TLS_DIR = `${DATA_DIR}/tls`;
/** The bearer tokens `--secure` makes: an admin (every tenant, ring operations) and ordinary callers of two tenants. */
const DEV_TOKENS = {
  admin: { principal: 'admin', tenant: '', scopes: ['*'] },
  'tenant-a': { principal: 'tenant-a', tenant: 'tenant-a', scopes: [] },
  'tenant-b': { principal: 'tenant-b', tenant: 'tenant-b', scopes: [] },
} as const;
const tokenFile = (name: keyof typeof DEV_TOKENS) => `${TLS_DIR}/${name}.token`;
const SNAPSHOT_KEY_FILE = `${TLS_DIR}/redis-snapshot.key`;
const MASTER_KEY_FILE = `${TLS_DIR}/personal-data-master.key`;

/** What `--secure` hands the processes: certificates by identity, the dev token's hash, the Redis snapshot key. */
interface Security {
  readonly certs: Readonly<Record<string, CertFiles>>;
  readonly caFile: string;
  /** The admin token's file (`admin.token`), beside `tenant-a.token` and `tenant-b.token`. */
  readonly adminTokenFile: string;
  /** AUTH_TOKENS: `sha256:<hex of each token's SHA-256>:principal:tenant:scopes` (the tokens never leave their files). */
  readonly authTokens: string;
  readonly snapshotKey: string | undefined;
  /** The file holding the master key that wraps the data subjects' keys. */
  readonly masterKeyFile: string;
}

/** A secret kept in `file` (created with `bytes` random bytes, owner-only, when missing). */
function secretIn(file: string, bytes: number): string {
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept !== '') return kept;
  }
  const secret = randomBytes(bytes).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

async function prepareSecurity(shardIds: readonly string[]): Promise<Security> {
  const local = { ips: ['127.0.0.1'], dns: ['localhost'] };
  const certs = await ensureDevCertificates(
    TLS_DIR,
    ['router', 'rebalancer', 'relay', 'pm-worker', ...shardIds].map((name) => ({ name, ...local })),
  );
  // An ordinary caller commands every aggregate type and reads, within its tenant; `*` crosses tenants.
  const ordinary = [...new Set(modules.flatMap((m) => m.deciders.map((d) => d.aggregateType))), 'read'];
  const authTokens = Object.entries(DEV_TOKENS).map(([name, t]) => {
    const hash = createHash('sha256')
      .update(secretIn(tokenFile(name as keyof typeof DEV_TOKENS), 32))
      .digest('hex');
    return `sha256:${hash}:${t.principal}:${t.tenant}:${(t.scopes.length > 0 ? t.scopes : ordinary).join('|')}`;
  });
  return {
    certs,
    caFile: resolve(certs.router!.caFile),
    adminTokenFile: resolve(tokenFile('admin')),
    authTokens: authTokens.join(','),
    snapshotKey: process.env.REDIS_URL ? secretIn(SNAPSHOT_KEY_FILE, 32) : undefined,
    masterKeyFile: (secretIn(MASTER_KEY_FILE, 32), resolve(MASTER_KEY_FILE)),
  };
}

function tlsEnv(files: CertFiles): Record<string, string> {
  return { TLS_CERT_FILE: resolve(files.certFile), TLS_KEY_FILE: resolve(files.keyFile), TLS_CA_FILE: resolve(files.caFile) };
}

interface ShardPlan {
  readonly index: number;
  readonly id: string;
  readonly address: string;
}

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  stopping: boolean;
}

/** The package root (holds bin/shardwrite.js), from `scripts/` under tsx or `dist/scripts/` when built. */
/** Whether the environment configures an authentication method (then the local cluster uses it). */
function authConfiguredIn(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.AUTH_TOKENS || env.AUTH_JWKS_FILE || env.AUTH_JWKS_URL);
}

function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(resolve(dir, 'bin/shardwrite.js'))) return dir;
    if (dirname(dir) === dir) throw new Error('bin/shardwrite.js not found above this script');
  }
}

/** Whether to run the relay: `--relay`, or NATS_URL set. */
function relayWanted(): boolean {
  return process.argv.includes('--relay') || (process.env.NATS_URL ?? '') !== '';
}

function shardCount(): number {
  return countOption('--shards', 'SHARDS', 3, 1);
}

function spareCount(): number {
  return countOption('--spare', 'SPARES', 0, 0);
}

function countOption(flag: string, variable: string, fallback: number, min: number): number {
  const i = process.argv.indexOf(flag);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[variable];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > 32) throw new Error(`${flag} must be ${min}..32 (got "${raw}")`);
  return n;
}

/** Runs this script again as the supervisor, in its own process group, and relays Ctrl-C to it. */
function runSupervisor(): void {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [SUPERVISED]: '1' },
  });
  const relay = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('SIGINT', relay);
  process.on('SIGTERM', relay);
  process.on('SIGHUP', relay);
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } catch (err) {
    // Another starter created it between our check and our CREATE.
    if ((err as { code?: unknown }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Spawns `shardwrite <kind>` with `env`, logging to `.data/logs/<name>.log`; resolves with its address once it prints `ready`. */
function startChild(root: string, name: string, kind: 'shard' | 'router' | 'relay' | 'pm-worker', env: NodeJS.ProcessEnv, children: Child[], readyLine = /listening on (\S+)/): Promise<string> {
  const log: WriteStream = createWriteStream(resolve(LOG_DIR, `${name}.log`), { flags: 'a' });
  const proc = spawn(process.execPath, [...SERVICE_NODE_FLAGS, resolve(root, 'bin/shardwrite.js'), kind], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = {
    name,
    process: proc,
    stopping: false,
    exited: new Promise((done) => proc.on('exit', (code) => done(code))),
  };
  children.push(child);
  proc.stderr.pipe(log, { end: false });
  return new Promise((ready, fail) => {
    let listening = false;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      log.write(line + '\n');
      const m = readyLine.exec(line);
      if (m && !listening && !line.startsWith('{')) {
        listening = true;
        ready(m[1]!);
      }
    });
    void child.exited.then((code) => {
      log.end();
      if (!listening) fail(new Error(`${name} exited with code ${code} before listening; see ${LOG_DIR}/${name}.log`));
      else if (!child.stopping) console.error(`${name} exited unexpectedly (code ${code}); see ${LOG_DIR}/${name}.log`);
    });
  });
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.stopping = true;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await child.exited;
  clearTimeout(timer);
}

/** The shards to run: the ring's when one exists (its ids must be shard-K), else `count` new ones. */
function planShards(ring: RingDocument | undefined, count: number): ShardPlan[] {
  if (!ring) {
    return Array.from({ length: count }, (_, k) => ({ index: k, id: `shard-${k}`, address: `127.0.0.1:${SHARD_PORT_BASE + k}` }));
  }
  return ring.shards.map((s: RingShard) => {
    const m = /^shard-(\d+)$/.exec(s.id);
    if (!m) throw new Error(`the ring has shard "${s.id}", which npm start does not know how to run (expected shard-K)`);
    return { index: Number(m[1]), id: s.id, address: s.address };
  });
}

async function supervise(): Promise<void> {
  const root = packageRoot();
  const count = shardCount();
  const spareTotal = spareCount();
  mkdirSync(LOG_DIR, { recursive: true });

  const children: Child[] = [];
  const servers: Promise<EmbeddedPostgresHandle>[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      console.log('stopping: router, then shards, then PostgreSQL …');
      // The relay and the pm worker first: they acknowledge what they did while the router still serves them.
      await Promise.all(children.filter((c) => c.name === 'relay' || c.name === 'pm-worker').map(stopChild));
      for (const c of children.filter((c) => c.name === 'router')) await stopChild(c);
      await Promise.all(children.filter((c) => c.name !== 'router' && c.name !== 'relay').map(stopChild));
      // A server that failed to start has nothing to stop.
      await Promise.all(
        servers.map((s) =>
          s.then(
            (h) => h.stop(),
            () => {},
          ),
        ),
      );
      console.log('stopped');
    })());
  // Repeated signals do not cut the orderly stop short: its steps are bounded by STOP_TIMEOUT_MS.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // embedded-postgres hooks these signals to stop its servers at once and exit, which would pull the
    // databases out from under shards still draining: the order is ours to keep.
    process.removeAllListeners(signal);
    process.on(signal, () => void stop().then(() => process.exit(0)));
  }
  // The relaying parent went away (its terminal closed): stop too.
  process.on('disconnect', () => void stop().then(() => process.exit(0)));
  process.on('exit', () => {
    for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  });

  try {
    // One server per shard, or the one in DATABASE_URL for everything.
    const external = process.env.DATABASE_URL;
    const embedded = new Map<number, Promise<EmbeddedPostgresHandle>>();
    const serverFor = async (k: number): Promise<string> => {
      if (external) return external;
      let handle = embedded.get(k);
      if (!handle) {
        handle = startEmbeddedPostgres({ dataDir: `${DATA_DIR}/pg-shard-${k}`, port: PG_PORT_BASE + k });
        embedded.set(k, handle);
        servers.push(handle);
      }
      return (await handle).url;
    };
    if (external) {
      console.log('using the PostgreSQL server in DATABASE_URL for every database');
    } else {
      console.log(`starting embedded PostgreSQL servers (data in ${DATA_DIR}/pg-shard-K) …`);
      // Start them together: server 0 holds the ring, the others are almost always needed.
      for (let k = 0; k < count; k++) void serverFor(k).catch(() => {});
    }

    const ringDatabaseUrl = await ensureDatabase(await serverFor(0), RING_DATABASE);
    const store = new PgRingStore({ connectionString: ringDatabaseUrl });
    let ring: RingDocument;
    let plan: ShardPlan[];
    try {
      await store.migrate();
      const existing = await store.current();
      plan = planShards(existing, count);
      if (existing && existing.shards.length !== count) {
        console.log(`the ring (epoch ${existing.epoch}) has ${existing.shards.length} shards: running those (SHARDS=${count} applies to a new cluster only)`);
      }
      ring = existing ?? (await store.initIfEmpty({ epoch: 1, shards: plan.map((p) => ({ id: p.id, address: p.address })) }));
    } finally {
      await store.close();
    }
    // Spares take the ids after the ring's: on a fresh start with --spare 1, shard-3.
    const next = Math.max(...plan.map((p) => p.index)) + 1;
    const spares: ShardPlan[] = Array.from({ length: spareTotal }, (_, i) => ({
      index: next + i,
      id: `shard-${next + i}`,
      address: `127.0.0.1:${SHARD_PORT_BASE + next + i}`,
    }));
    if (!external) for (const p of spares) void serverFor(p.index).catch(() => {});

    const logLevel = process.env.LOG_LEVEL ?? DEFAULT_LOG_LEVEL;
    const secure = process.argv.includes('--secure');
    const security = secure ? await prepareSecurity([...plan, ...spares].map((p) => p.id)) : undefined;
    // Every process gets one or the other: TLS and tokens, or insecure mode chosen explicitly (every
    // process listens on loopback only; AUTH_* settings from the environment still authenticate callers).
    const modeEnv = (identity: string): Record<string, string | undefined> =>
      security ? { ...tlsEnv(security.certs[identity]!), AUTH_TOKENS: security.authTokens, SHARDWRITE_INSECURE: undefined } : { SHARDWRITE_INSECURE: 'true' };
    const shards = await Promise.all(
      [...plan, ...spares].map(async (p) => {
        const databaseUrl = await ensureDatabase(await serverFor(p.index), `shardwrite_shard_${p.index}`);
        const metrics = `127.0.0.1:${SHARD_METRICS_PORT_BASE + p.index}`;
        const env = {
          ...process.env,
          [SUPERVISED]: undefined,
          SHARD_ID: p.id,
          GRPC_ADDRESS: p.address,
          DATABASE_URL: databaseUrl,
          RING_DATABASE_URL: ringDatabaseUrl,
          METRICS_ADDRESS: metrics,
          LOG_LEVEL: logLevel,
          ...modeEnv(p.id),
          ...(security?.snapshotKey ? { REDIS_SNAPSHOT_KEY: security.snapshotKey } : {}),
          ...(security ? { PERSONAL_DATA_MASTER_KEY_FILE: security.masterKeyFile } : {}),
        };
        const address = await startChild(root, p.id, 'shard', env, children);
        return { id: p.id, address, databaseUrl, metrics };
      }),
    );
    const routerEnv = {
      ...process.env,
      [SUPERVISED]: undefined,
      DATABASE_URL: undefined,
      GRPC_ADDRESS: ROUTER_ADDRESS,
      RING_DATABASE_URL: ringDatabaseUrl,
      METRICS_ADDRESS: ROUTER_METRICS,
      LOG_LEVEL: logLevel,
      ...modeEnv('router'),
    };
    const routerAddress = await startChild(root, 'router', 'router', routerEnv, children);

    const onRing = shards.slice(0, plan.length);
    const spareShards = shards.slice(plan.length);
    writeFileSync(
      CLUSTER_FILE,
      JSON.stringify(
        {
          router: { address: routerAddress, metrics: ROUTER_METRICS },
          ringDatabaseUrl,
          epoch: ring.epoch,
          shards: onRing,
          spares: spareShards,
          ...(security ? { tls: { caFile: security.caFile, rebalancer: tlsEnv(security.certs.rebalancer!) }, tokenFile: security.adminTokenFile } : {}),
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`\nshardwrite is running — endpoint ${routerAddress} (metrics http://${ROUTER_METRICS}/metrics)`);
    if (security) {
      const dir = dirname(security.adminTokenFile);
      console.log('secure mode: TLS on every hop (router ↔ shards mutual TLS), bearer tokens required');
      console.log(`  trust the CA      ${security.caFile}`);
      console.log(`  tokens            ${dir}/admin.token (every tenant, ring operations), ${dir}/tenant-a.token, ${dir}/tenant-b.token (one tenant each)`);
      console.log(`  TypeScript client createClient('${routerAddress}', { tls: { caFile: '${security.caFile}' }, metadata: { authorization: 'Bearer <token>' } })`);
      console.log(`  grpcurl           grpcurl -cacert ${security.caFile} -H "authorization: Bearer $(cat ${dir}/tenant-a.token)" ${routerAddress} list`);
    } else {
      console.log(
        `INSECURE mode (SHARDWRITE_INSECURE=true): no TLS, loopback only; ${authConfiguredIn(process.env) ? 'authentication from the AUTH_* settings' : 'no authentication, every caller may do everything'}; \`npm start -- --secure\` turns TLS and authentication on`,
      );
    }
    console.log(`ring epoch ${ring.epoch}:`);
    for (const s of onRing) console.log(`  ${s.id}  ${s.address}  (metrics http://${s.metrics}/metrics)`);
    if (spareShards.length > 0) {
      console.log('spare shards, running but not on the ring (they own nothing yet):');
      for (const s of spareShards) console.log(`  ${s.id}  ${s.address}  (metrics http://${s.metrics}/metrics)`);
      console.log('put one on the ring — its streams move to it while the cluster serves — with:');
      const rebalancerTls = security
        ? Object.entries(tlsEnv(security.certs.rebalancer!))
            .map(([k, v]) => `${k}=${v} `)
            .join('')
        : '';
      for (const s of spareShards) console.log(`  ${rebalancerTls}npx shardwrite ring add ${s.id} --address ${s.address}`);
      console.log('and watch with `npx shardwrite ring status`');
    }
    if (!process.argv.includes('--no-pm')) {
      const pmEnv = {
        ...process.env,
        [SUPERVISED]: undefined,
        DATABASE_URL: undefined,
        PM_SOURCE: routerAddress,
        RING_DATABASE_URL: ringDatabaseUrl,
        METRICS_ADDRESS: PM_METRICS,
        LOG_LEVEL: logLevel,
        ...modeEnv('pm-worker'),
        ...(security ? { AUTH_TOKENS: undefined, PM_TOKEN: readFileSync(security.adminTokenFile, 'utf8').trim() } : {}),
      };
      await startChild(root, 'pm-worker', 'pm-worker', pmEnv, children, /pm-worker listening on (\S+)/);
      console.log(`process managers: shardwrite pm-worker (metrics http://${PM_METRICS}/metrics; \`npx shardwrite pm list --failed\`)`);
    }
    if (relayWanted()) {
      const relayEnv = {
        ...process.env,
        [SUPERVISED]: undefined,
        DATABASE_URL: undefined,
        RELAY_SOURCE: routerAddress,
        LOG_LEVEL: logLevel,
        ...modeEnv('relay'),
        ...(security ? { AUTH_TOKENS: undefined, RELAY_TOKEN: readFileSync(security.adminTokenFile, 'utf8').trim() } : {}),
      };
      const natsUrl = process.env.NATS_URL || RELAY_DEFAULTS.natsUrl;
      console.log(`relay: publishing every committed event to NATS JetStream at ${natsUrl} (log ${LOG_DIR}/relay.log)`);
      // Not awaited: the relay waits for NATS by itself, and the cluster serves meanwhile.
      void startChild(root, 'relay', 'relay', relayEnv, children, /relay (following) /).catch((err: unknown) => console.error(err instanceof Error ? err.message : err));
    }
    console.log(`logs in ${LOG_DIR}/, cluster in ${CLUSTER_FILE}; Ctrl-C stops everything\n`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    await stop();
    process.exit(1);
  }
}

if (process.env[SUPERVISED] === '1') {
  await supervise();
} else {
  runSupervisor();
}

/**
 * Everything a shard process can be told, read from the environment in one
 * place. `loadShardConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { EnvReader, type Env } from '../src/config.js';
import { AUTH_ENV, readAuthSettings, type AuthSettings } from '../src/auth/settings.js';
import { DEV_SNAPSHOT_KEY, MIN_SNAPSHOT_KEY_BYTES } from '../src/cache/redis-snapshot-cache.js';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from '../src/pipeline/pipeline.js';
import { DEFAULT_SNAPSHOT_POLICY, parseSnapshotIntervals, type SnapshotPolicy } from '../src/pipeline/snapshotter.js';
import { deciderRegistry, modules } from '../src/domain/index.js';
import { SHARD_TLS_ENV, readHealthAddress, readLinkIdentities, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';
import { RING_ENV, SHARD_ID_PATTERN, readRingSettings, type RingSettings } from '../src/ring/index.js';
import { DEFAULT_TAIL_COALESCE_MS } from '../src/subscriptions/live-tail.js';
import { DEFAULT_OWNER_CACHE_BYTES, DEFAULT_OWNER_CACHE_ENTRIES } from '../src/pipeline/aggregate-cache.js';
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ENTRIES, DEFAULT_STATEMENT_TIMEOUT_MS } from '../src/store/group-commit-writer.js';
import { DEFAULT_STORE_BREAKER_RESET_MS, DEFAULT_STORE_BREAKER_WINDOW_MS, DEFAULT_STORE_CALL_TIMEOUT_MS } from '../src/store/store-breaker.js';
import { DEV_MASTER_KEY, parseMasterKey } from '../src/privacy/key-provider.js';
import { DEFAULT_KEY_TTL_MS } from '../src/privacy/subject-keys.js';
import { readFileSync } from 'node:fs';

/** How a shard protects personal data (crypto-shredding, `src/privacy/`). */
export interface PersonalDataSettings {
  /**
   * PERSONAL_DATA_ENCRYPTION — `on` (the default): declared personal fields are stored
   * encrypted with their subject's key, which lives in the ring database (so it needs
   * RING_DATABASE_URL; without a ring database a shard stores them as decided, with a
   * warning). `off`: stored in plaintext (measurements only).
   */
  readonly encryption: boolean;
  /**
   * PERSONAL_DATA_MASTER_KEY (base64 of 32 bytes) or PERSONAL_DATA_MASTER_KEY_FILE (a file
   * holding it) — wraps every subject's data key; the same on every shard. Required with a
   * ring database unless SHARDWRITE_INSECURE=true, where a public development key is used,
   * with a warning.
   */
  readonly masterKey: Buffer;
  readonly masterKeyIsDev: boolean;
  /** PERSONAL_DATA_KEY_TTL_MS — how long an unwrapped data key stays cached (60000). */
  readonly keyTtlMs: number;
}

export interface ShardConfig {
  /** SHARD_ID — this shard's stable id on the ring; default `shard-0`. */
  readonly shardId: string;
  /** GRPC_ADDRESS — where the gRPC server listens; default `127.0.0.1:50051`. */
  readonly grpcAddress: string;
  /** DATABASE_URL — this shard's own PostgreSQL event store (required). */
  readonly databaseUrl: string;
  /**
   * TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none; unset = plaintext),
   * TLS_RELOAD_MS (5000): the shard serves TLS with this certificate, reloaded when the
   * files change; see `src/grpc/tls.ts`.
   */
  readonly tls: TlsSettings | undefined;
  /**
   * TLS_LINK_IDENTITIES — the client-certificate identities (SAN DNS or URI, or CN)
   * allowed on the internal services (the router's link, ShardFeed); default `router,rebalancer`.
   * Used only with TLS.
   */
  readonly linkIdentities: ReadonlySet<string>;
  /**
   * HEALTH_ADDRESS — a plaintext listener serving only `grpc.health.v1.Health`, for
   * probes that cannot speak TLS (Kubernetes' native gRPC probes); `off` (the default) = none.
   * It reveals the serving status and nothing else.
   */
  readonly healthAddress: string | undefined;
  /**
   * REDIS_URL — snapshot cache; unset = no Redis. `rediss://` for TLS; ACL
   * credentials as `rediss://user:password@host:6379` (never logged).
   */
  readonly redisUrl: string | undefined;
  /**
   * REDIS_CA_FILE — with a `rediss://` REDIS_URL, the CA certificate(s) (PEM) the
   * Redis server's certificate must chain to (its name must match the URL's host);
   * unset = Node's default trust store.
   */
  readonly redisCaFile: string | undefined;
  /**
   * REDIS_SNAPSHOT_KEY — the HMAC-SHA256 key that authenticates Redis snapshot
   * entries, the same on every shard, at least 32 bytes. Required with REDIS_URL
   * unless SHARDWRITE_INSECURE=true; in insecure mode it defaults to a public
   * development key, with a warning at start-up (`redisSnapshotKeyIsDev`).
   */
  readonly redisSnapshotKey: string;
  readonly redisSnapshotKeyIsDev: boolean;
  /**
   * The Redis snapshot cache (used only with REDIS_URL): REDIS_SNAPSHOT_TTL_SECONDS
   * (3600), REDIS_TIMEOUT_MS (50, per command; slower is a miss), REDIS_KEY_PREFIX (`sw:snap:`),
   * REDIS_BREAKER_RESET_MS (5000, how long Redis is bypassed after its breaker opens).
   */
  readonly redisSnapshotTtlSeconds: number;
  readonly redisTimeoutMs: number;
  readonly redisKeyPrefix: string;
  readonly redisBreakerResetMs: number;
  /**
   * Snapshot policy: SNAPSHOT_INTERVAL (50, events since the last snapshot),
   * SNAPSHOT_INTERVALS (per aggregate type, `order-lines=20,order-header=100`; unset = none),
   * SNAPSHOT_SLOW_LOAD_MS (unset = off; a load at least this slow snapshots too).
   */
  readonly snapshots: SnapshotPolicy;
  /** METRICS_ADDRESS — Prometheus `/metrics` listener, `host:port`; default `127.0.0.1:9464`; port 0 = any free port. */
  readonly metricsAddress: string | undefined;
  /** DB_POOL_SIZE — pooled read connections (the writer has its own); default 8. */
  readonly dbPoolSize: number;
  /** DB_STATEMENT_TIMEOUT_MS — bound on every statement; default {@link DEFAULT_STATEMENT_TIMEOUT_MS}. */
  readonly statementTimeoutMs: number;
  /** BATCH_MAX_ENTRIES / BATCH_MAX_BYTES — caps of one group-commit batch; defaults {@link DEFAULT_MAX_BATCH_ENTRIES} and {@link DEFAULT_MAX_BATCH_BYTES}. */
  readonly batchMaxEntries: number;
  readonly batchMaxBytes: number;
  /**
   * TAIL_COALESCE_MS — least time between two reads of the store by the live tail that
   * subscriptions share: commits closer together are delivered by one read (fewer queries
   * and messages per event, at most this much more delivery latency); default 15.
   */
  readonly tailCoalesceMs: number;
  /** CACHE_MAX_ENTRIES / CACHE_MAX_BYTES — owner cache bounds; defaults {@link DEFAULT_OWNER_CACHE_ENTRIES} and {@link DEFAULT_OWNER_CACHE_BYTES}. */
  readonly cacheMaxEntries: number;
  readonly cacheMaxBytes: number;
  /** MAX_MESSAGE_BYTES — largest request accepted; default 1 MiB (larger: RESOURCE_EXHAUSTED). */
  readonly maxMessageBytes: number;
  /** STREAM_MAX_IN_FLIGHT — commands executing at once per CommandStreamService stream; default 1024. */
  readonly streamMaxInFlight: number;
  /** Authentication: SHARDWRITE_INSECURE, AUTH_TOKENS, AUTH_JWKS_FILE / AUTH_JWKS_URL, … (see `AuthSettings`). */
  readonly auth: AuthSettings;
  /** LOG_LEVEL — pino level; default `info`. */
  readonly logLevel: string;
  /**
   * The breaker in front of PostgreSQL: STORE_CALL_TIMEOUT_MS (a slower call fails and counts; default
   * {@link DEFAULT_STORE_CALL_TIMEOUT_MS}), STORE_BREAKER_RESET_MS (open → half-open after; default
   * {@link DEFAULT_STORE_BREAKER_RESET_MS}), STORE_BREAKER_WINDOW_MS (the window the failure rate is
   * measured over; default {@link DEFAULT_STORE_BREAKER_WINDOW_MS}).
   */
  readonly storeBreaker: { readonly callTimeoutMs: number; readonly resetTimeoutMs: number; readonly windowMs: number };
  /** SHUTDOWN_GRACE_MS — how long SIGTERM waits for in-flight calls; default 10,000. */
  readonly shutdownGraceMs: number;
  /**
   * Pipeline limits: RETRY_MAX_ATTEMPTS (6), RETRY_BASE_MS (5), RETRY_CAP_MS (200),
   * RETRY_BUDGET_MS (2000), LOAD_TIMEOUT_MS (2000), MAX_IN_FLIGHT (10,000),
   * CALLER_SHARE_PERCENT (25: the share of MAX_IN_FLIGHT one caller — its principal, else its
   * connection; through a router, the caller the router names — may hold before OVERLOADED),
   * MAX_QUEUED_PER_STREAM (1,000), MAX_COMMANDS_PER_ENTRY (256), OVERLOAD_RETRY_AFTER_MS (100),
   * MOVE_WAIT_MS (2000: how long a command for a stream that a rebalance is moving away waits for
   * the new ring; answered WRONG_SHARD, which the router retries at the new owner, when the ring
   * comes in time, else UNAVAILABLE / STREAM_MOVING; bounded by the call's deadline),
   * ASSUME_NEW_STREAMS (`on`: a command for a stream not in memory is first decided as if the
   * stream were new, without reading it; the append at version 0 refutes that when it exists,
   * and the command is then decided again on the stream as read; `off` reads first).
   */
  readonly pipeline: PipelineOptions;
  /**
   * The ring: RING_DATABASE_URL (unset = this shard owns every aggregate at
   * epoch 0, the single-shard mode), RING_BOOTSTRAP (unset), RING_POLL_MS
   * (2000), RING_NOTIFY (`on`). See `RingSettings`.
   */
  readonly ring: RingSettings;
  readonly personalData: PersonalDataSettings;
}

/** The settings `loadShardConfig` reads (used by the deployment checks). */
export const SHARD_ENV = [
  'SHARD_ID',
  'GRPC_ADDRESS',
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_CA_FILE',
  'METRICS_ADDRESS',
  'DB_POOL_SIZE',
  'DB_STATEMENT_TIMEOUT_MS',
  'BATCH_MAX_ENTRIES',
  'BATCH_MAX_BYTES',
  'TAIL_COALESCE_MS',
  'CACHE_MAX_ENTRIES',
  'CACHE_MAX_BYTES',
  'MAX_MESSAGE_BYTES',
  ...AUTH_ENV,
  'LOG_LEVEL',
  'SHUTDOWN_GRACE_MS',
  'RETRY_MAX_ATTEMPTS',
  'RETRY_BASE_MS',
  'RETRY_CAP_MS',
  'RETRY_BUDGET_MS',
  'LOAD_TIMEOUT_MS',
  'MAX_IN_FLIGHT',
  'CALLER_SHARE_PERCENT',
  'MAX_QUEUED_PER_STREAM',
  'MAX_COMMANDS_PER_ENTRY',
  'OVERLOAD_RETRY_AFTER_MS',
  'STORE_CALL_TIMEOUT_MS',
  'STORE_BREAKER_RESET_MS',
  'STORE_BREAKER_WINDOW_MS',
  'STREAM_MAX_IN_FLIGHT',
  'MOVE_WAIT_MS',
  'ASSUME_NEW_STREAMS',
  'REDIS_SNAPSHOT_TTL_SECONDS',
  'REDIS_TIMEOUT_MS',
  'REDIS_KEY_PREFIX',
  'REDIS_BREAKER_RESET_MS',
  'REDIS_SNAPSHOT_KEY',
  'HEALTH_ADDRESS',
  'SNAPSHOT_INTERVAL',
  'SNAPSHOT_INTERVALS',
  'SNAPSHOT_SLOW_LOAD_MS',
  ...RING_ENV,
  ...SHARD_TLS_ENV,
  'PERSONAL_DATA_ENCRYPTION',
  'PERSONAL_DATA_MASTER_KEY',
  'PERSONAL_DATA_MASTER_KEY_FILE',
  'PERSONAL_DATA_KEY_TTL_MS',
] as const;

export function loadShardConfig(env: Env): ShardConfig {
  const r = new EnvReader(env);
  const d = DEFAULT_PIPELINE_OPTIONS;
  const shardId = r.string('SHARD_ID', 'shard-0');
  if (!SHARD_ID_PATTERN.test(shardId)) r.problem(`SHARD_ID must be a DNS label like shard-0 (got "${shardId}")`);
  const metrics = r.string('METRICS_ADDRESS', '127.0.0.1:9464');
  const tls = readTlsSettings(r);
  const auth = readAuthSettings(r, tls !== undefined);
  const redisUrl = r.url('REDIS_URL', ['redis:', 'rediss:'], false);
  const redisCaFile = r.optionalString('REDIS_CA_FILE');
  if (redisCaFile !== undefined && protocolOf(redisUrl) !== 'rediss:') r.problem('REDIS_CA_FILE needs a rediss:// REDIS_URL (TLS to Redis)');
  const snapshotKey = r.optionalString('REDIS_SNAPSHOT_KEY');
  if (snapshotKey !== undefined && Buffer.byteLength(snapshotKey) < MIN_SNAPSHOT_KEY_BYTES) r.problem(`REDIS_SNAPSHOT_KEY must be at least ${MIN_SNAPSHOT_KEY_BYTES} bytes`);
  if (snapshotKey === undefined && redisUrl !== undefined && !auth.insecure) {
    r.problem('REDIS_SNAPSHOT_KEY is required with REDIS_URL (the same secret on every shard, at least 32 bytes): it authenticates the snapshots shards put in Redis');
  }
  const ring = readRingSettings(r, false);
  const config: ShardConfig = {
    shardId,
    grpcAddress: r.address('GRPC_ADDRESS', '127.0.0.1:50051'),
    databaseUrl: r.url('DATABASE_URL', ['postgres:', 'postgresql:'], true) ?? '',
    tls,
    linkIdentities: readLinkIdentities(r),
    healthAddress: readHealthAddress(r),
    redisUrl,
    redisCaFile,
    redisSnapshotKey: snapshotKey ?? DEV_SNAPSHOT_KEY,
    redisSnapshotKeyIsDev: snapshotKey === undefined,
    redisSnapshotTtlSeconds: r.int('REDIS_SNAPSHOT_TTL_SECONDS', 3600, 1, 30 * 24 * 3600),
    redisTimeoutMs: r.int('REDIS_TIMEOUT_MS', 50, 1, 60_000),
    redisKeyPrefix: r.string('REDIS_KEY_PREFIX', 'sw:snap:'),
    redisBreakerResetMs: r.int('REDIS_BREAKER_RESET_MS', 5000, 10, 600_000),
    snapshots: readSnapshotPolicy(r),
    metricsAddress: metrics === 'off' ? undefined : r.address('METRICS_ADDRESS', '127.0.0.1:9464'),
    dbPoolSize: r.int('DB_POOL_SIZE', 8, 1, 200),
    statementTimeoutMs: r.int('DB_STATEMENT_TIMEOUT_MS', DEFAULT_STATEMENT_TIMEOUT_MS, 100, 600_000),
    batchMaxEntries: r.int('BATCH_MAX_ENTRIES', DEFAULT_MAX_BATCH_ENTRIES, 1, 100_000),
    batchMaxBytes: r.int('BATCH_MAX_BYTES', DEFAULT_MAX_BATCH_BYTES, 1024, 1024 * 1024 * 1024),
    tailCoalesceMs: r.int('TAIL_COALESCE_MS', DEFAULT_TAIL_COALESCE_MS, 0, 1000),
    cacheMaxEntries: r.int('CACHE_MAX_ENTRIES', DEFAULT_OWNER_CACHE_ENTRIES, 0, 10_000_000),
    cacheMaxBytes: r.int('CACHE_MAX_BYTES', DEFAULT_OWNER_CACHE_BYTES, 0, 64 * 1024 * 1024 * 1024),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    streamMaxInFlight: r.int('STREAM_MAX_IN_FLIGHT', 1024, 1, 1_000_000),
    auth,
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    storeBreaker: {
      callTimeoutMs: r.int('STORE_CALL_TIMEOUT_MS', DEFAULT_STORE_CALL_TIMEOUT_MS, 10, 600_000),
      resetTimeoutMs: r.int('STORE_BREAKER_RESET_MS', DEFAULT_STORE_BREAKER_RESET_MS, 10, 600_000),
      windowMs: r.int('STORE_BREAKER_WINDOW_MS', DEFAULT_STORE_BREAKER_WINDOW_MS, 100, 600_000),
    },
    pipeline: {
      maxAttempts: r.int('RETRY_MAX_ATTEMPTS', d.maxAttempts, 1, 100),
      retryBaseMs: r.int('RETRY_BASE_MS', d.retryBaseMs, 0, 60_000),
      retryCapMs: r.int('RETRY_CAP_MS', d.retryCapMs, 0, 60_000),
      retryBudgetMs: r.int('RETRY_BUDGET_MS', d.retryBudgetMs, 0, 600_000),
      loadTimeoutMs: r.int('LOAD_TIMEOUT_MS', d.loadTimeoutMs, 1, 600_000),
      maxInFlight: r.int('MAX_IN_FLIGHT', d.maxInFlight, 1, 10_000_000),
      callerSharePercent: r.int('CALLER_SHARE_PERCENT', d.callerSharePercent, 1, 100),
      maxQueuedPerStream: r.int('MAX_QUEUED_PER_STREAM', d.maxQueuedPerStream, 1, 10_000_000),
      maxCommandsPerEntry: r.int('MAX_COMMANDS_PER_ENTRY', d.maxCommandsPerEntry, 1, 100_000),
      overloadRetryAfterMs: r.int('OVERLOAD_RETRY_AFTER_MS', d.overloadRetryAfterMs, 0, 600_000),
      moveWaitMs: r.int('MOVE_WAIT_MS', d.moveWaitMs, 0, 60_000),
      assumeNewStreams: r.oneOf('ASSUME_NEW_STREAMS', d.assumeNewStreams ? 'on' : 'off', ['on', 'off']) === 'on',
    },
    ring,
    personalData: readPersonalData(r, auth.insecure, ring.databaseUrl !== undefined),
  };
  r.done();
  return config;
}

function readPersonalData(r: EnvReader, insecure: boolean, withRing: boolean): PersonalDataSettings {
  const encryption = r.oneOf('PERSONAL_DATA_ENCRYPTION', 'on', ['on', 'off']) === 'on';
  const inline = r.optionalString('PERSONAL_DATA_MASTER_KEY');
  const file = r.optionalString('PERSONAL_DATA_MASTER_KEY_FILE');
  let masterKey: Buffer | undefined;
  if (inline !== undefined && file !== undefined) r.problem('set PERSONAL_DATA_MASTER_KEY or PERSONAL_DATA_MASTER_KEY_FILE, not both');
  const text = inline ?? (file === undefined ? undefined : readKeyFile(r, file));
  if (text !== undefined) {
    try {
      masterKey = parseMasterKey(text);
    } catch (err) {
      r.problem(`the personal-data master key ${(err as Error).message}`);
    }
  } else if (encryption && withRing && !insecure) {
    r.problem("PERSONAL_DATA_MASTER_KEY or PERSONAL_DATA_MASTER_KEY_FILE is required (32 random bytes, base64, the same on every shard: `openssl rand -base64 32`): it wraps the data subjects' keys");
  }
  return {
    encryption,
    masterKey: masterKey ?? DEV_MASTER_KEY,
    masterKeyIsDev: masterKey === undefined,
    keyTtlMs: r.int('PERSONAL_DATA_KEY_TTL_MS', DEFAULT_KEY_TTL_MS, 0, 24 * 3600 * 1000),
  };
}

function readKeyFile(r: EnvReader, file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    r.problem(`PERSONAL_DATA_MASTER_KEY_FILE cannot be read: ${(err as Error).message}`);
    return undefined;
  }
}

function readSnapshotPolicy(r: EnvReader): SnapshotPolicy {
  const spec = r.optionalString('SNAPSHOT_INTERVALS');
  const parsed = spec ? parseSnapshotIntervals(spec, new Set(deciderRegistry(modules).keys())) : { intervals: {}, problems: [] };
  for (const p of parsed.problems) r.problem(p);
  const slow = r.optionalString('SNAPSHOT_SLOW_LOAD_MS');
  return {
    interval: r.int('SNAPSHOT_INTERVAL', DEFAULT_SNAPSHOT_POLICY.interval, 1, 1_000_000),
    intervals: parsed.intervals,
    slowLoadMs: slow === undefined ? undefined : r.int('SNAPSHOT_SLOW_LOAD_MS', 0, 1, 600_000),
  };
}

/** The URL's protocol, or undefined when it does not parse (that is a problem of its own; a thrown TypeError would carry the URL, password and all). */
function protocolOf(url: string | undefined): string | undefined {
  try {
    return url === undefined ? undefined : new URL(url).protocol;
  } catch {
    return undefined;
  }
}

/**
 * Everything a process-manager worker can be told, read from the environment
 * in one place. `loadPmWorkerConfig` validates it all and throws one
 * `ConfigError` listing every problem.
 */
import { hostname } from 'node:os';
import { ConfigError, DEFAULT_GRPC_ADDRESS, DEFAULT_LOG_LEVEL, EnvReader, LOG_LEVELS, address, choice, envNames, int, text, url, type Env } from '../src/config.js';
import type { AnyProcessManager } from '../src/process-managers/index.js';
import { TLS_SETTINGS, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';

/** Every default of the worker, in one place. */
export const PM_WORKER_DEFAULTS = {
  /** A router: commands and the consumer groups go through it; default {@link DEFAULT_GRPC_ADDRESS}. */
  source: DEFAULT_GRPC_ADDRESS,
  /** @default `pm` — the group of process manager `x` is `pm-x`. */
  groupPrefix: 'pm',
  /**
   * @default `beginning` — a new group reads the events already committed too
   * (orders placed before the worker first ran are handled). `end`: only what
   * commits after the group is created (history, e.g. long-unpaid orders, is
   * left alone).
   */
  startFrom: 'beginning' as 'beginning' | 'end',
  /** @default 16 — partitions of a new group. */
  partitions: 16,
  /** @default 1024 */
  maxUnacked: 1024,
  /** @default 1000 — how often armed timeouts are scanned for due ones (and once at start). */
  timeoutScanMs: 1000,
  /** @default 10000 — deadline of each command the worker sends. */
  commandTimeoutMs: 10_000,
  /** @default `127.0.0.1:9470`; `off` = no metrics server. */
  metricsAddress: '127.0.0.1:9470',
  /** Default {@link DEFAULT_LOG_LEVEL}. */
  logLevel: DEFAULT_LOG_LEVEL,
} as const;

export interface PmWorkerConfig {
  /** PM_SOURCE — the router. */
  readonly source: string;
  /** PM_DATABASE_URL, else RING_DATABASE_URL — where `pm_timeouts` and `pm_instances` live. */
  readonly databaseUrl: string;
  /** PM_GROUP_PREFIX */
  readonly groupPrefix: string;
  /** PM_MEMBER — this member's name; default host name and pid. */
  readonly member: string;
  /** PM_START_FROM — `beginning` or `end`, for a new group only. */
  readonly startFrom: 'beginning' | 'end';
  /** PM_PARTITIONS (1..256), PM_MAX_UNACKED (1..10,000) */
  readonly partitions: number;
  readonly maxUnacked: number;
  /** PM_TIMEOUT_SCAN_MS (10..600,000) */
  readonly timeoutScanMs: number;
  /** PM_COMMAND_TIMEOUT_MS (100..600,000) */
  readonly commandTimeoutMs: number;
  /**
   * PM_TOKEN — bearer token sent to the router. Its principal needs scope `*`:
   * it reads every tenant's events and commands every tenant's orders (only
   * `*` crosses tenants). Required unless insecure mode.
   */
  readonly token: string | undefined;
  /** SHARDWRITE_INSECURE — `true` lets the worker run without PM_TOKEN or TLS (it warns); default false. */
  readonly insecure: boolean;
  /** TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none): the worker reaches PM_SOURCE over TLS. Required unless insecure mode. */
  readonly tls: TlsSettings | undefined;
  /** METRICS_ADDRESS, or undefined for `off`. */
  readonly metricsAddress: string | undefined;
  /** LOG_LEVEL */
  readonly logLevel: string;
  /** Each process manager's own settings (e.g. PM_PAYMENT_TIMEOUT_MS), by name. */
  readonly settings: ReadonlyMap<string, unknown>;
}

/** Every setting `loadPmWorkerConfig` reads, besides each definition's `settingsEnv`, with its default (from {@link PM_WORKER_DEFAULTS}) and range. */
export const PM_WORKER_SETTINGS = {
  PM_SOURCE: address(PM_WORKER_DEFAULTS.source),
  PM_DATABASE_URL: text(),
  RING_DATABASE_URL: url('postgres:', 'postgresql:'),
  PM_GROUP_PREFIX: text(PM_WORKER_DEFAULTS.groupPrefix),
  PM_MEMBER: text(),
  PM_START_FROM: choice(PM_WORKER_DEFAULTS.startFrom, ['beginning', 'end']),
  PM_PARTITIONS: int(PM_WORKER_DEFAULTS.partitions, 1, 256),
  PM_MAX_UNACKED: int(PM_WORKER_DEFAULTS.maxUnacked, 1, 10_000),
  PM_TIMEOUT_SCAN_MS: int(PM_WORKER_DEFAULTS.timeoutScanMs, 10, 600_000),
  PM_COMMAND_TIMEOUT_MS: int(PM_WORKER_DEFAULTS.commandTimeoutMs, 100, 600_000),
  PM_TOKEN: text(),
  SHARDWRITE_INSECURE: choice('false', ['true', 'false']),
  METRICS_ADDRESS: text(PM_WORKER_DEFAULTS.metricsAddress),
  LOG_LEVEL: choice(PM_WORKER_DEFAULTS.logLevel, LOG_LEVELS),
  ...TLS_SETTINGS,
} as const;

/** The variables `loadPmWorkerConfig` reads, besides each definition's `settingsEnv`. */
export const PM_WORKER_ENV = envNames(PM_WORKER_SETTINGS);

/**
 * Reads and validates the worker's settings, and each definition's own.
 *
 * @throws ConfigError listing every problem found.
 */
export function loadPmWorkerConfig(env: Env, definitions: readonly AnyProcessManager[]): PmWorkerConfig {
  const r = new EnvReader(env, PM_WORKER_SETTINGS);
  const databaseUrl = r.optionalString('PM_DATABASE_URL') ?? r.optionalString('RING_DATABASE_URL');
  if (!databaseUrl) r.problem('PM_DATABASE_URL (or RING_DATABASE_URL) is required');
  const groupPrefix = r.string('PM_GROUP_PREFIX');
  if (!/^[A-Za-z0-9._-]{1,50}$/.test(groupPrefix)) r.problem(`PM_GROUP_PREFIX must match [A-Za-z0-9._-]{1,50} (got "${groupPrefix}")`);
  const metrics = r.string('METRICS_ADDRESS');
  const settings = new Map<string, unknown>();
  for (const def of definitions) {
    try {
      settings.set(def.name, def.readSettings(env));
    } catch (err) {
      r.problem(err instanceof Error ? err.message : String(err));
    }
  }
  const config: PmWorkerConfig = {
    source: r.address('PM_SOURCE'),
    databaseUrl: databaseUrl ?? '',
    groupPrefix,
    member: r.optionalString('PM_MEMBER') ?? `${hostname()}-${process.pid}`,
    startFrom: r.oneOf<'beginning' | 'end'>('PM_START_FROM'),
    partitions: r.int('PM_PARTITIONS'),
    maxUnacked: r.int('PM_MAX_UNACKED'),
    timeoutScanMs: r.int('PM_TIMEOUT_SCAN_MS'),
    commandTimeoutMs: r.int('PM_COMMAND_TIMEOUT_MS'),
    token: r.optionalString('PM_TOKEN'),
    insecure: r.oneOf('SHARDWRITE_INSECURE') === 'true',
    tls: readTlsSettings(r),
    metricsAddress: metrics === 'off' ? undefined : metrics,
    logLevel: r.oneOf('LOG_LEVEL'),
    settings,
  };
  // Secure by default: the worker authenticates to the router over TLS unless insecure mode is chosen explicitly.
  if (!config.insecure && !config.token) r.problem('PM_TOKEN is required (the pm worker authenticates to the router), or choose insecure mode explicitly with SHARDWRITE_INSECURE=true');
  if (!config.insecure && !config.tls) {
    r.problem('TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required (the pm worker reaches the router over TLS), or choose insecure mode explicitly with SHARDWRITE_INSECURE=true');
  }
  r.done();
  return config;
}

export { ConfigError };

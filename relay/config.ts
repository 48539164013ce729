/**
 * Everything a relay process can be told, read from the environment in one
 * place. `loadRelayConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { hostname } from 'node:os';
import { DEFAULT_GRPC_ADDRESS, DEFAULT_LOG_LEVEL, EnvReader, LOG_LEVELS, address, choice, envNames, int, text, type Env } from '../src/config.js';
import { isValidSubjectPrefix } from './bus.js';
import { TLS_SETTINGS, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';

/** The buses the relay can publish to (`RELAY_BUS`); each has its settings below. */
export const BUSES = ['nats'] as const;
export type BusKind = (typeof BUSES)[number];

/** Every default of the relay, in one place (the README's table is this). */
export const RELAY_DEFAULTS = {
  /** A router (or one shard) serving ConsumerGroupService; default {@link DEFAULT_GRPC_ADDRESS}. */
  source: DEFAULT_GRPC_ADDRESS,
  /** @default `nats-relay` */
  group: 'nats-relay',
  /** @default `beginning` — a new group relays everything already committed, then what follows; `end`: only what commits later. */
  startFrom: 'beginning' as 'beginning' | 'end',
  /** @default 1024 — events delivered to the relay and not yet published. */
  maxUnacked: 1024,
  /** @default 256 — events of one partition published together. */
  maxBatch: 256,
  /** @default `nats` */
  bus: 'nats' as BusKind,
  /** @default `nats://127.0.0.1:4222` */
  natsUrl: 'nats://127.0.0.1:4222',
  /** @default `SHARDWRITE` */
  natsStream: 'SHARDWRITE',
  /** @default `shardwrite` — subjects `shardwrite.<aggregate_type>.<aggregate_id>`. */
  subjectPrefix: 'shardwrite',
  /**
   * @default 600000 (10 minutes) — a republished event within this window is
   * not stored again; a relay down for longer may store a second copy of the
   * events it had published and not yet acknowledged.
   */
  duplicateWindowMs: 600_000,
  /** @default 5000 */
  publishTimeoutMs: 5_000,
  /** Default {@link DEFAULT_LOG_LEVEL}. */
  logLevel: DEFAULT_LOG_LEVEL,
} as const;

export interface RelayConfig {
  /** RELAY_SOURCE — where the consumer group is served; default {@link RELAY_DEFAULTS}.source. */
  readonly source: string;
  /** RELAY_GROUP — the consumer group's name (its checkpoints live in the service). */
  readonly group: string;
  /** RELAY_MEMBER — this member's name in logs; default host name and pid. */
  readonly member: string;
  /** RELAY_AGGREGATE_TYPES / RELAY_EVENT_TYPES — comma-separated filters; empty = all. Fixed by the group's first join. */
  readonly aggregateTypes: string[];
  readonly eventTypes: string[];
  /** RELAY_START_FROM — `''` (the beginning) or `end`, for a new group only. */
  readonly startFrom: '' | 'end';
  /** RELAY_MAX_UNACKED — in flight to the bus (1..10,000). */
  readonly maxUnacked: number;
  /** RELAY_MAX_BATCH — per publish call and partition. */
  readonly maxBatch: number;
  /** RELAY_TOKEN — bearer token sent to the service when it checks credentials (needs the read scope); default none. */
  readonly token: string | undefined;
  /** SHARDWRITE_INSECURE — `true` lets the relay start without RELAY_TOKEN or TLS (and it warns); default false. */
  readonly insecure: boolean;
  /**
   * TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none; unset = plaintext):
   * the relay reaches RELAY_SOURCE over TLS trusting TLS_CA_FILE, presenting its certificate.
   */
  readonly tls: TlsSettings | undefined;
  /** RELAY_BUS — which bus; `nats`. */
  readonly bus: BusKind;
  readonly nats: {
    /** NATS_URL */
    readonly url: string;
    /** NATS_STREAM — the JetStream stream (created when missing). */
    readonly stream: string;
    /** NATS_SUBJECT_PREFIX — dot-separated tokens of letters, digits, `_`, `-`. */
    readonly subjectPrefix: string;
    /** NATS_DUPLICATE_WINDOW_MS */
    readonly duplicateWindowMs: number;
    /** NATS_PUBLISH_TIMEOUT_MS */
    readonly publishTimeoutMs: number;
  };
  /** LOG_LEVEL */
  readonly logLevel: string;
}

/** Every setting `loadRelayConfig` reads, with its default (from {@link RELAY_DEFAULTS}) and range. */
export const RELAY_SETTINGS = {
  RELAY_SOURCE: address(RELAY_DEFAULTS.source),
  RELAY_GROUP: text(RELAY_DEFAULTS.group),
  RELAY_MEMBER: text(),
  RELAY_AGGREGATE_TYPES: text(),
  RELAY_EVENT_TYPES: text(),
  RELAY_START_FROM: choice(RELAY_DEFAULTS.startFrom, ['beginning', 'end']),
  RELAY_MAX_UNACKED: int(RELAY_DEFAULTS.maxUnacked, 1, 10_000),
  RELAY_MAX_BATCH: int(RELAY_DEFAULTS.maxBatch, 1, 10_000),
  RELAY_TOKEN: text(),
  SHARDWRITE_INSECURE: choice('false', ['true', 'false']),
  RELAY_BUS: choice(RELAY_DEFAULTS.bus, BUSES),
  NATS_URL: text(RELAY_DEFAULTS.natsUrl),
  NATS_STREAM: text(RELAY_DEFAULTS.natsStream),
  NATS_SUBJECT_PREFIX: text(RELAY_DEFAULTS.subjectPrefix),
  NATS_DUPLICATE_WINDOW_MS: int(RELAY_DEFAULTS.duplicateWindowMs, 1_000, 7 * 24 * 3_600_000),
  NATS_PUBLISH_TIMEOUT_MS: int(RELAY_DEFAULTS.publishTimeoutMs, 100, 600_000),
  LOG_LEVEL: choice(RELAY_DEFAULTS.logLevel, LOG_LEVELS),
  ...TLS_SETTINGS,
} as const;

/** The variables `loadRelayConfig` reads. */
export const RELAY_ENV = envNames(RELAY_SETTINGS);

const list = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * Reads and validates the relay's settings from `env` (see `RelayConfig`
 * and `RELAY_DEFAULTS`).
 *
 * @throws ConfigError listing every problem found, not just the first.
 */
export function loadRelayConfig(env: Env): RelayConfig {
  const r = new EnvReader(env, RELAY_SETTINGS);
  const group = r.string('RELAY_GROUP');
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(group)) r.problem(`RELAY_GROUP must match [A-Za-z0-9._-]{1,100} (got "${group}")`);
  const subjectPrefix = r.string('NATS_SUBJECT_PREFIX');
  if (!isValidSubjectPrefix(subjectPrefix)) {
    r.problem(`NATS_SUBJECT_PREFIX must be dot-separated tokens of letters, digits, _ and - (got "${subjectPrefix}")`);
  }
  const stream = r.string('NATS_STREAM');
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(stream)) r.problem(`NATS_STREAM must be letters, digits, _ and - (got "${stream}")`);
  const natsUrl = r.string('NATS_URL');
  for (const u of natsUrl.split(',')) {
    if (!/^(nats|tls):\/\/[^\s/]+$/.test(u) && !/^[^\s/:]+:\d{1,5}$/.test(u)) r.problem(`NATS_URL must be nats://host:port[,…] (got "${u}")`);
  }
  const config: RelayConfig = {
    source: r.address('RELAY_SOURCE'),
    group,
    member: r.optionalString('RELAY_MEMBER') ?? `${hostname()}-${process.pid}`,
    aggregateTypes: list(r.optionalString('RELAY_AGGREGATE_TYPES')),
    eventTypes: list(r.optionalString('RELAY_EVENT_TYPES')),
    startFrom: r.oneOf('RELAY_START_FROM') === 'end' ? 'end' : '',
    maxUnacked: r.int('RELAY_MAX_UNACKED'),
    maxBatch: r.int('RELAY_MAX_BATCH'),
    token: r.optionalString('RELAY_TOKEN'),
    insecure: r.oneOf('SHARDWRITE_INSECURE') === 'true',
    tls: readTlsSettings(r),
    bus: r.oneOf<BusKind>('RELAY_BUS'),
    nats: {
      url: natsUrl,
      stream,
      subjectPrefix,
      duplicateWindowMs: r.int('NATS_DUPLICATE_WINDOW_MS'),
      publishTimeoutMs: r.int('NATS_PUBLISH_TIMEOUT_MS'),
    },
    logLevel: r.oneOf('LOG_LEVEL'),
  };
  // Secure by default: the relay authenticates to the router unless insecure mode is chosen explicitly.
  if (!config.token && !config.insecure) r.problem('RELAY_TOKEN is required (the relay authenticates to the router), or choose insecure mode explicitly with SHARDWRITE_INSECURE=true');
  if (!config.tls && !config.insecure) {
    r.problem('TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required (the relay reaches the router over TLS), or choose insecure mode explicitly with SHARDWRITE_INSECURE=true');
  }
  r.done();
  return config;
}

/**
 * The Redis tier of rehydration: a copy of the latest PostgreSQL snapshots,
 * read before PostgreSQL. It is only ever a cache (invariant I8) and it fails
 * open: an error, a timeout or an open breaker is a miss, so Redis being down,
 * slow or flushed costs latency and nothing else.
 *
 * Entries are authenticated: each carries an HMAC-SHA256 over its content with
 * a key the shards share (REDIS_SNAPSHOT_KEY). An entry whose tag is missing
 * or wrong (planted or edited by anyone who can write to Redis but does not
 * hold the key) is rejected: counted as outcome `rejected`, logged without its
 * content, and the load falls through to PostgreSQL — never decided on.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Redis } from 'ioredis';
import CircuitBreaker from 'opossum';
import type { Logger } from '../observability/logger.js';
import type { PipelineMetrics } from '../observability/metrics.js';
import type { SnapshotCache, StoredSnapshot } from '../store/types.js';

/** Options of `RedisSnapshotCache`; every one but `url` has a default. */
export interface RedisSnapshotCacheOptions {
  /** `redis://` or `rediss://` URL. */
  readonly url: string;
  /**
   * With a `rediss://` URL: the CA certificate(s) (PEM) the server's certificate
   * must chain to, and whose name must match the URL's host (a private CA, like
   * the cluster's). Unset = Node's default trust store.
   */
  readonly tlsCa?: Buffer;
  /** Time to live of each entry; default 3600 s. */
  readonly ttlSeconds?: number;
  /** Bound on one command (ioredis `commandTimeout`); default 50 ms. The breaker's own timeout is twice this. */
  readonly timeoutMs?: number;
  /** Bound on establishing a connection; default 1000 ms. Reconnects continue in the background. */
  readonly connectTimeoutMs?: number;
  /** Key of a stream's entry is `${keyPrefix}${streamId}`; default `sw:snap:`. */
  readonly keyPrefix?: string;
  /** How long the breaker stays open before one trial call; default 5000 ms. */
  readonly breakerResetMs?: number;
  /** Failure percentage in the rolling window that opens the breaker; default 50. */
  readonly breakerErrorPercentage?: number;
  /** Calls in the rolling window before the breaker may open; default 5. */
  readonly breakerVolumeThreshold?: number;
  /**
   * The key of the entries' HMAC-SHA256, shared by every shard of a deployment
   * (at least 32 bytes); default {@link DEV_SNAPSHOT_KEY}, for tests and insecure mode only.
   */
  readonly authKey?: string;
  readonly metrics?: PipelineMetrics;
  readonly logger?: Logger;
}

/**
 * The snapshot key used when none is configured: public, so it authenticates
 * nothing against an attacker; only for insecure mode and tests.
 * @default 'shardwrite-insecure-development-snapshot-key'
 */
export const DEV_SNAPSHOT_KEY = 'shardwrite-insecure-development-snapshot-key';

/** Shortest REDIS_SNAPSHOT_KEY accepted (bytes). @default 32 */
export const MIN_SNAPSHOT_KEY_BYTES = 32;

/** The defaults of `RedisSnapshotCacheOptions`. */
export const REDIS_SNAPSHOT_CACHE_DEFAULTS = {
  ttlSeconds: 3600,
  timeoutMs: 50,
  connectTimeoutMs: 1000,
  keyPrefix: 'sw:snap:',
  breakerResetMs: 5000,
  breakerErrorPercentage: 50,
  breakerVolumeThreshold: 5,
} as const;

/**
 * Sets the entry unless it holds a newer snapshot: compares (version, schema)
 * read from the head of the stored JSON, which `encode` always writes first.
 * An equal entry only has its TTL refreshed. Atomic, so two writers racing
 * can never leave the older snapshot in place.
 */
const PUT_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local v, s = string.match(cur, '^{"v":(%d+),"s":(%d+),')
  v = tonumber(v)
  s = tonumber(s)
  local nv = tonumber(ARGV[1])
  local ns = tonumber(ARGV[2])
  if v and s and (v > nv or (v == nv and s >= ns)) then
    if v == nv and s == ns then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1`;

type RedisWithPut = Redis & {
  swPutSnapshot(key: string, version: number, schemaVersion: number, value: string, ttlSeconds: number): Promise<number>;
};

type Action = () => Promise<unknown>;

/**
 * `SnapshotCache` over ioredis, each call through an opossum breaker.
 *
 * Guarantees: `get` and `put` never reject and never wait much longer than
 * `timeoutMs` (commands are not queued while disconnected and not retried);
 * `put` never replaces a newer snapshot; a value that does not parse is a
 * miss. Entries are JSON
 * `{"v":version,"s":schemaVersion,"p":"position","id":streamId,"t":aggregateType,"state":…,"m":"hmac"}`,
 * where `m` is the hex HMAC-SHA256 (key `authKey`) of the entry without it.
 */
export class RedisSnapshotCache implements SnapshotCache {
  readonly #redis: RedisWithPut;
  readonly #breaker: CircuitBreaker<[Action], unknown>;
  readonly #ttlSeconds: number;
  readonly #keyPrefix: string;
  readonly #metrics: PipelineMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #authKey: string;
  #lastErrorLog = 0;

  constructor(options: RedisSnapshotCacheOptions) {
    const d = REDIS_SNAPSHOT_CACHE_DEFAULTS;
    const timeoutMs = options.timeoutMs ?? d.timeoutMs;
    this.#ttlSeconds = options.ttlSeconds ?? d.ttlSeconds;
    this.#keyPrefix = options.keyPrefix ?? d.keyPrefix;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#authKey = options.authKey ?? DEV_SNAPSHOT_KEY;
    this.#redis = new Redis(options.url, {
      // ioredis turns on TLS for rediss:// by itself; this only says whom to trust.
      ...(options.tlsCa !== undefined && new URL(options.url).protocol === 'rediss:' ? { tls: { ca: options.tlsCa } } : {}),
      commandTimeout: timeoutMs,
      connectTimeout: options.connectTimeoutMs ?? d.connectTimeoutMs,
      // A dead Redis must fail a call at once, not park it until a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: false,
    }) as RedisWithPut;
    this.#redis.defineCommand('swPutSnapshot', { numberOfKeys: 1, lua: PUT_LUA });
    // Without a listener ioredis prints every connection error; they are
    // expected while Redis is away and already counted per call.
    this.#redis.on('error', (err: unknown) => this.#logThrottled(err, 'redis connection error'));

    this.#breaker = new CircuitBreaker<[Action], unknown>((action) => action(), {
      timeout: timeoutMs * 2,
      resetTimeout: options.breakerResetMs ?? d.breakerResetMs,
      errorThresholdPercentage: options.breakerErrorPercentage ?? d.breakerErrorPercentage,
      volumeThreshold: options.breakerVolumeThreshold ?? d.breakerVolumeThreshold,
    });
    const gauge = this.#metrics?.snapshotCacheBreaker;
    gauge?.set(0);
    this.#breaker.on('open', () => {
      gauge?.set(2);
      this.#logger?.warn('redis snapshot cache breaker opened: PostgreSQL serves every load');
    });
    this.#breaker.on('halfOpen', () => gauge?.set(1));
    this.#breaker.on('close', () => {
      gauge?.set(0);
      this.#logger?.info('redis snapshot cache breaker closed');
    });
  }

  /** The latest cached snapshot of `streamId`, or `undefined` (miss, or any failure). Never rejects. */
  async get(streamId: string): Promise<StoredSnapshot | undefined> {
    let raw: unknown;
    try {
      raw = await this.#breaker.fire(() => this.#redis.get(this.#keyPrefix + streamId));
    } catch (err) {
      this.#failed('get', err);
      return undefined;
    }
    if (typeof raw !== 'string') {
      this.#metrics?.snapshotCacheOps.inc({ op: 'get', outcome: 'miss' });
      return undefined;
    }
    const body = verify(this.#authKey, raw);
    if (body === undefined) {
      this.#metrics?.snapshotCacheOps.inc({ op: 'get', outcome: 'rejected' });
      this.#logThrottled(undefined, 'rejected a Redis snapshot entry without a valid authentication tag (not written by a shard); loading from PostgreSQL', { streamId });
      return undefined;
    }
    const snapshot = decode(streamId, body);
    this.#metrics?.snapshotCacheOps.inc({ op: 'get', outcome: snapshot ? 'hit' : 'miss' });
    return snapshot;
  }

  /** Writes `snapshot` with the TTL unless a newer one is cached; `false` when kept or on any failure. Never rejects. */
  async put(snapshot: StoredSnapshot): Promise<boolean> {
    try {
      const value = sign(this.#authKey, encode(snapshot));
      const written = await this.#breaker.fire(() => this.#redis.swPutSnapshot(this.#keyPrefix + snapshot.streamId, snapshot.version, snapshot.schemaVersion, value, this.#ttlSeconds));
      const ok = written === 1;
      this.#metrics?.snapshotCacheOps.inc({ op: 'put', outcome: ok ? 'written' : 'kept' });
      return ok;
    } catch (err) {
      this.#failed('put', err);
      return false;
    }
  }

  /**
   * Resolves `true` once connected, or `false` after `timeoutMs` (the cache
   * works either way: until then every call is a miss).
   */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    if (this.#redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#redis.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      this.#redis.once('ready', onReady);
    });
  }

  /** Whether the breaker currently bypasses Redis. */
  get bypassed(): boolean {
    return this.#breaker.opened;
  }

  /** Stops the breaker and closes the connection (gracefully when Redis answers within a moment). */
  async close(): Promise<void> {
    this.#breaker.shutdown();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#redis.quit(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 200);
        }),
      ]);
    } catch {
      // quit fails when the connection is already gone; disconnect below either way.
    } finally {
      clearTimeout(timer);
      this.#redis.disconnect();
    }
  }

  #failed(op: 'get' | 'put', err: unknown): void {
    const outcome = isBreakerOpen(err) ? 'open' : isTimeout(err) ? 'timeout' : 'error';
    this.#metrics?.snapshotCacheOps.inc({ op, outcome });
    if (outcome !== 'open') this.#logThrottled(err, `redis snapshot cache ${op} failed (treated as a miss)`);
  }

  /** At most one log line a second: a Redis outage must not flood the logs. */
  #logThrottled(err: unknown, message: string, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 1000) return;
    this.#lastErrorLog = now;
    this.#logger?.warn(err === undefined ? fields : { err: loggable(err), ...fields }, message);
  }
}

/**
 * What of a Redis error may be logged: its class, message and code. Never the
 * error itself: ioredis attaches the failed command with its arguments, and the
 * connection's HELLO/AUTH command carries the password.
 */
export function loggable(err: unknown): { type: string; message: string; code?: string } {
  if (typeof err !== 'object' || err === null) return { type: typeof err, message: String(err) };
  const e = err as { name?: unknown; message?: unknown; code?: unknown };
  return {
    type: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : '',
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
  };
}

function isBreakerOpen(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EOPENBREAKER';
}

function isTimeout(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return code === 'ETIMEDOUT' || (typeof message === 'string' && /timed? ?out/i.test(message));
}

function encode(s: StoredSnapshot): string {
  // `v` and `s` first: the Lua script reads them from the head of the value.
  return `{"v":${s.version},"s":${s.schemaVersion},"p":"${s.position}","id":${JSON.stringify(s.streamId)},"t":${JSON.stringify(s.aggregateType)},"state":${JSON.stringify(s.state)}}`;
}

/** `,"m":"<64 hex>"}` — the tag, always last, so the head the Lua script reads is unchanged. */
const TAG = /,"m":"([0-9a-f]{64})"\}$/;

function tagOf(key: string, body: string): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** The entry for `body` (an encoded snapshot, a JSON object): the same object with its HMAC as the last member `m`. */
export function signEntry(key: string, body: string): string {
  return sign(key, body);
}

function sign(key: string, body: string): string {
  return `${body.slice(0, -1)},"m":"${tagOf(key, body).toString('hex')}"}`;
}

/** The body of a signed entry when its tag is right (compared in constant time), else `undefined`. */
function verify(key: string, entry: string): string | undefined {
  const m = TAG.exec(entry);
  if (!m) return undefined;
  const body = `${entry.slice(0, m.index)}}`;
  const expected = tagOf(key, body);
  const given = Buffer.from(m[1]!, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? body : undefined;
}

function decode(streamId: string, raw: string): StoredSnapshot | undefined {
  try {
    const parsed = JSON.parse(raw) as { v?: unknown; s?: unknown; p?: unknown; id?: unknown; t?: unknown; state?: unknown };
    const { v, s, p, id, t } = parsed;
    // A reply meant for another key (or a hand-edited value) is a miss, never another stream's state.
    if (id !== streamId) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 1 || !Number.isSafeInteger(s)) return undefined;
    if (typeof p !== 'string' || !/^\d+$/.test(p) || typeof t !== 'string' || !('state' in parsed)) return undefined;
    return { streamId, aggregateType: t, version: v as number, schemaVersion: s as number, position: BigInt(p), state: parsed.state };
  } catch {
    return undefined;
  }
}

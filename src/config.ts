/**
 * The settings schema and reader shared by every process's config module
 * (`shard/config.ts`, `router/config.ts`, `relay/config.ts`, …).
 *
 * Each setting is declared once in its module's schema — a plain object keyed by the
 * environment variable, built with {@link int}, {@link text}, {@link choice},
 * {@link address} or {@link url} — with its default (a literal or the `DEFAULT_…`
 * constant, documented with `@default`, of the code that uses it) and its range. The
 * loaders read a setting by its name alone, so no default is written at the call, and
 * a process's list of variables (`SHARD_ENV`, `ROUTER_ENV`, …, used by `npm start` and
 * the deployment checks) is `Object.keys` of its schema. Reading a name its schema does
 * not declare does not compile, and throws if forced.
 */

/** An integer setting within [min, max]; without a default it is unset when absent. */
export interface IntSetting {
  readonly kind: 'int';
  readonly default: number | undefined;
  readonly min: number;
  readonly max: number;
}

/** A free-form string setting. */
export interface TextSetting {
  readonly kind: 'text';
  readonly default: string | undefined;
}

/** One of a fixed set of words. */
export interface ChoiceSetting {
  readonly kind: 'choice';
  readonly default: string;
  readonly allowed: readonly string[];
}

/** `host:port` with a port in 0..65535. */
export interface AddressSetting {
  readonly kind: 'address';
  readonly default: string;
}

/** A URL with one of the given protocols. */
export interface UrlSetting {
  readonly kind: 'url';
  readonly default: undefined;
  readonly protocols: readonly string[];
}

export type Setting = IntSetting | TextSetting | ChoiceSetting | AddressSetting | UrlSetting;

/** A config module's schema: every variable it reads, by name. */
export type Settings = Readonly<Record<string, Setting>>;

/** An integer in [min, max]; `fallback` undefined = unset when absent. */
export const int = (fallback: number | undefined, min: number, max: number = Number.MAX_SAFE_INTEGER): IntSetting => ({ kind: 'int', default: fallback, min, max });
/** A string; `fallback` undefined = unset when absent. */
export const text = (fallback?: string): TextSetting => ({ kind: 'text', default: fallback });
/** One of `allowed`. */
export const choice = (fallback: string, allowed: readonly string[]): ChoiceSetting => ({ kind: 'choice', default: fallback, allowed });
/** `host:port`. */
export const address = (fallback: string): AddressSetting => ({ kind: 'address', default: fallback });
/** A URL with one of `protocols` (`postgres:`); required or not is the loader's call. */
export const url = (...protocols: string[]): UrlSetting => ({ kind: 'url', default: undefined, protocols });

/** The pino levels every process's LOG_LEVEL takes. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The names of a schema's variables, in declaration order. */
export function envNames(settings: Settings): readonly string[] {
  return Object.freeze(Object.keys(settings));
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

type Name<S extends Settings> = keyof S & string;

/**
 * Reads the settings of schema `S` from `env`, remembering every problem
 * until `done()`. Defaults and ranges come from the schema.
 */
export class EnvReader<S extends Settings = Settings> {
  private readonly problems: string[] = [];

  constructor(
    private readonly env: Env,
    readonly settings: S,
  ) {}

  /** The value, else the setting's default (a text setting without one: `''`). */
  string(name: Name<S>): string {
    const spec = this.spec(name, ['text', 'choice', 'address']) as TextSetting | ChoiceSetting | AddressSetting;
    return this.optionalString(name) ?? spec.default ?? '';
  }

  optionalString(name: Name<S>): string | undefined {
    this.spec(name);
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  requiredString(name: Name<S>): string {
    const v = this.optionalString(name);
    if (v === undefined) this.problems.push(`${name} is required`);
    return v ?? '';
  }

  /** An integer within the setting's [min, max], else its default. */
  int(name: Name<S>): number {
    const spec = this.spec(name, ['int']) as IntSetting;
    if (spec.default === undefined) throw new Error(`setting ${name} has no default: read it with optionalInt`);
    return this.optionalInt(name) ?? spec.default;
  }

  /** An integer within the setting's [min, max], or `undefined` when unset (or invalid: a problem). */
  optionalInt(name: Name<S>): number | undefined {
    const { min, max } = this.spec(name, ['int']) as IntSetting;
    const raw = this.optionalString(name);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer in ${min}..${max} (got "${raw}")`);
      return undefined;
    }
    return n;
  }

  /** `host:port`, with a port in 0..65535. */
  address(name: Name<S>): string {
    const v = this.string(name);
    const m = /^(.+):(\d{1,5})$/.exec(v);
    if (!m || Number(m[2]) > 65535) this.problems.push(`${name} must be host:port (got "${v}")`);
    return v;
  }

  /** A URL with one of the setting's protocols. */
  url(name: Name<S>, required: boolean): string | undefined {
    const { protocols } = this.spec(name, ['url']) as UrlSetting;
    const v = required ? this.requiredString(name) : this.optionalString(name);
    if (!v) return undefined;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) this.problems.push(`${name} must use ${protocols.join(' or ')} (got ${u.protocol})`);
    } catch {
      this.problems.push(`${name} is not a valid URL`);
    }
    return v;
  }

  /** One of the setting's allowed words, else its default. */
  oneOf<T extends string>(name: Name<S>): T {
    const { default: fallback, allowed } = this.spec(name, ['choice']) as ChoiceSetting;
    const v = this.string(name);
    if (!allowed.includes(v)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${v}")`);
      return fallback as T;
    }
    return v as T;
  }

  /** An `on`/`off` choice as a boolean. */
  onOff(name: Name<S>): boolean {
    return this.oneOf(name) === 'on';
  }

  /** Records a problem found by the caller's own checks. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws one ConfigError listing every problem, if there were any. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }

  private spec(name: string, kinds?: readonly Setting['kind'][]): Setting {
    const spec = Object.hasOwn(this.settings, name) ? this.settings[name] : undefined;
    if (spec === undefined) throw new Error(`setting ${name} is not declared in this process's schema`);
    if (kinds && !kinds.includes(spec.kind)) throw new Error(`setting ${name} is a ${spec.kind} setting, not ${kinds.join(' or ')}`);
    return spec;
  }
}

/**
 * Where a gRPC server (router or shard) listens by default.
 * @default '127.0.0.1:50051'
 */
export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:50051';
/**
 * Largest request a server accepts, in bytes (larger: RESOURCE_EXHAUSTED).
 * @default 1048576 (1 MiB)
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/**
 * Commands in flight on one CommandStreamService stream before RESOURCE_EXHAUSTED outcomes.
 * @default 1024
 */
export const DEFAULT_STREAM_MAX_IN_FLIGHT = 1024;
/**
 * The retry hint sent with RESOURCE_EXHAUSTED / OVERLOADED, in ms.
 * @default 100
 */
export const DEFAULT_OVERLOAD_RETRY_AFTER_MS = 100;
/**
 * How long SIGTERM waits for in-flight calls, in ms.
 * @default 10000
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/**
 * The pino level of every process.
 * @default 'info'
 */
export const DEFAULT_LOG_LEVEL = 'info';

/** The settings the router and the shards read alike. */
export const SERVING_SETTINGS = {
  GRPC_ADDRESS: address(DEFAULT_GRPC_ADDRESS),
  MAX_MESSAGE_BYTES: int(DEFAULT_MAX_MESSAGE_BYTES, 1024, 64 * 1024 * 1024),
  STREAM_MAX_IN_FLIGHT: int(DEFAULT_STREAM_MAX_IN_FLIGHT, 1, 1_000_000),
  OVERLOAD_RETRY_AFTER_MS: int(DEFAULT_OVERLOAD_RETRY_AFTER_MS, 0, 600_000),
  SHUTDOWN_GRACE_MS: int(DEFAULT_SHUTDOWN_GRACE_MS, 0, 600_000),
  LOG_LEVEL: choice(DEFAULT_LOG_LEVEL, LOG_LEVELS),
} as const;

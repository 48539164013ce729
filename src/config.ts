/**
 * Helpers for the per-process config modules (`shard/config.ts`,
 * `router/config.ts`): read typed settings from an env object, collect every
 * problem, and throw them all at once at start-up.
 */

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads settings from `env`, remembering every problem until `done()`. */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const v = this.env[name];
    return v === undefined || v === '' ? fallback : v;
  }

  optionalString(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  requiredString(name: string): string {
    const v = this.optionalString(name);
    if (v === undefined) this.problems.push(`${name} is required`);
    return v ?? '';
  }

  /** An integer within [min, max]. */
  int(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer in ${min}..${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  }

  /** `host:port`, with a port in 0..65535. */
  address(name: string, fallback: string): string {
    const v = this.string(name, fallback);
    const m = /^(.+):(\d{1,5})$/.exec(v);
    if (!m || Number(m[2]) > 65535) this.problems.push(`${name} must be host:port (got "${v}")`);
    return v;
  }

  /** A URL with one of the given protocols. */
  url(name: string, protocols: string[], required: boolean): string | undefined {
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

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.string(name, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${v}")`);
      return fallback;
    }
    return v as T;
  }

  /** Records a problem found by the caller's own checks. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws one ConfigError listing every problem, if there were any. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

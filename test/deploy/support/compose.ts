/**
 * docker-compose.yml as `docker compose` sees it: YAML with merge keys
 * (`<<: *anchor`), `${VAR:-default}` interpolation, validated against the
 * Compose specification's JSON schema (vendored in ../schemas/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';

export interface ComposeService {
  build?: string | { context?: string; dockerfile?: string };
  image?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: number | string; host_ip?: string })[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string | string[]; interval?: string; retries?: number };
  volumes?: (string | { type: string; source?: string; target: string })[];
  hostname?: string;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  stop_grace_period?: string;
  [field: string]: unknown;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * Replaces `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
 * `$VAR` and `$$` in every string, as Compose does before anything else (the
 * "Interpolation" section of the Compose specification). Written here because
 * no real implementation installs in CI: Debian ships no `docker compose`
 * plugin (its docker-compose 1.29 is the retired Python one), and the npm
 * wrappers of compose-go download their binary at install time.
 */
export function interpolate<T>(value: T, env: Readonly<Record<string, string | undefined>>, unresolved: string[] = []): T {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name, colon, op, arg, bare) => {
      if (whole === '$$') return '$';
      const key = (name ?? bare) as string;
      const v = env[key];
      const unset = v === undefined || (colon === ':' && v === '');
      if (!unset) return v;
      if (op === '-') return arg as string;
      if (op === '?') throw new Error(`${key}: ${arg as string}`);
      unresolved.push(key);
      return '';
    }) as T;
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env, unresolved)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, unresolved)])) as T;
  }
  return value;
}

/** The file's YAML with merge keys applied, before interpolation. */
export function readComposeYaml(file: string): ComposeFile {
  return parse(readFileSync(file, 'utf8'), { merge: true, maxAliasCount: -1 }) as ComposeFile;
}

/** A service's environment as a map (Compose accepts a map or a `KEY=value` list). */
export function serviceEnv(s: ComposeService): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Go-style durations, as Compose writes them: `1m30s`, `500ms`, `2s`. */
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
/** `[[host_ip:]published:]target[/protocol]` with optional ranges. */
const PORT = /^((\[[0-9a-fA-F:.]+\]|[0-9.]+|[\w.-]+):)?((\d+(-\d+)?):)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/;

/** A validator for the vendored Compose specification schema. */
export function composeSchemaValidator(schemaDir: string): (doc: unknown) => string[] {
  const schema = JSON.parse(readFileSync(join(schemaDir, 'compose-spec.json'), 'utf8')) as Record<string, unknown>;
  // This revision of the schema declares draft 2019-09 by an http URI Ajv does not know, and keeps
  // draft-04 style `id` annotations, which Ajv 8 refuses; none is ever referenced. Drop both.
  delete schema.$schema;
  const dropIds = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(dropIds);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(dropIds);
    }
  };
  dropIds(schema);
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  ajv.addFormat('duration', DURATION);
  ajv.addFormat('ports', { type: 'string', validate: (s: string) => PORT.test(s) });
  ajv.addFormat('expose', { type: 'string', validate: (s: string) => /^\d+(-\d+)?(\/(tcp|udp))?$/.test(s) });
  ajv.addFormat('subnet_ip_address', { type: 'string', validate: (s: string) => /^[0-9a-fA-F.:]+\/\d{1,3}$/.test(s) });
  const validate = ajv.compile(schema);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}

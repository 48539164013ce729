/**
 * The environment a container gets from Kubernetes, worked out offline: plain
 * values with `$(VAR)` expansion, the pod's own fields, and keys of the
 * Secrets and ConfigMaps among the rendered resources.
 */
import type { Resource } from './kustomize.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

export interface ResolvedEnv {
  /** Name → value, in the order Kubernetes defines them. */
  readonly values: Record<string, string>;
  /** Variables used in another one's `$(NAME)` (they assemble values; the process need not read them). */
  readonly referenced: ReadonlySet<string>;
  /** Secret keys that had no Secret among the resources (a base that expects one from outside). */
  readonly missingSecrets: readonly string[];
}

/** What a secret key resolves to when its Secret is created outside the manifests (URL-safe, and long enough for a key). */
export const EXTERNAL_SECRET_VALUE = 'from-external-secret-made-outside-the-manifests';
/** Keys whose value has a format of its own: what an operator's Secret would hold (AUTH_TOKENS keeps hashes). */
const EXTERNAL_SECRET_SAMPLES: Readonly<Record<string, string>> = {
  'auth-tokens': `sha256:${'ab'.repeat(32)}:svc:tenant-a:*`,
  'personal-data-master-key': Buffer.alloc(32, 7).toString('base64'),
};

export function resolveEnv(container: Record<string, unknown>, pod: { name: string; namespace: string }, resources: readonly Resource[]): ResolvedEnv {
  if (container.envFrom !== undefined) throw new Error(`container ${String(container.name)}: envFrom cannot be checked against the config module; list each variable`);
  const values: Record<string, string> = {};
  const referenced = new Set<string>();
  const missingSecrets: string[] = [];
  for (const v of (container.env as EnvVar[] | undefined) ?? []) {
    let value: string;
    if (v.value !== undefined) {
      // Kubernetes expands $(NAME) of variables defined earlier; $$ escapes.
      value = String(v.value).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
        if (whole === '$$') return '$';
        if (!(name! in values)) throw new Error(`${v.name} uses $(${name}) before it is defined`);
        referenced.add(name!);
        return values[name!]!;
      });
    } else if (v.valueFrom?.fieldRef) {
      const path = v.valueFrom.fieldRef.fieldPath;
      if (path === 'metadata.name') value = pod.name;
      else if (path === 'metadata.namespace') value = pod.namespace;
      else throw new Error(`${v.name}: fieldRef ${path} is not modelled by the test`);
    } else if (v.valueFrom?.secretKeyRef) {
      const { name, key } = v.valueFrom.secretKeyRef;
      const secret = resources.find((r): r is Resource & { stringData?: Record<string, string>; data?: Record<string, string> } => r.kind === 'Secret' && r.metadata.name === name);
      if (!secret) {
        missingSecrets.push(`${name}/${key}`);
        value = EXTERNAL_SECRET_SAMPLES[key] ?? EXTERNAL_SECRET_VALUE;
      } else {
        const found = secret.stringData?.[key] ?? (secret.data?.[key] !== undefined ? Buffer.from(secret.data[key], 'base64').toString() : undefined);
        if (found === undefined) throw new Error(`${v.name}: Secret ${name} has no key ${key}`);
        value = found;
      }
    } else if (v.valueFrom?.configMapKeyRef) {
      const { name, key } = v.valueFrom.configMapKeyRef;
      const cm = resources.find((r): r is Resource & { data?: Record<string, string> } => r.kind === 'ConfigMap' && r.metadata.name === name);
      const found = cm?.data?.[key];
      if (found === undefined) throw new Error(`${v.name}: ConfigMap ${name} with key ${key} is not among the resources`);
      value = found;
    } else {
      throw new Error(`${v.name}: no value the test can resolve`);
    }
    if (v.name in values) throw new Error(`${v.name} is set twice`);
    values[v.name] = value;
  }
  return { values, referenced, missingSecrets };
}

/**
 * k8s/ as Kubernetes would get it: rendered by the real kustomize
 * (`kubectl kustomize`, as `kubectl apply -k` does), plus small readers of
 * the rendered resources. CI must have kubectl (.ci/run installs it; with
 * CI=true its absence fails the tests); elsewhere the checks that need the
 * rendering are skipped without it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/** Whether `kubectl` runs on this machine. */
export const KUBECTL_AVAILABLE = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

/** How much YAML `kubectl kustomize` may print for one target. */
const MAX_RENDER_BYTES = 64 * 1024 * 1024;

/** Multi-document YAML file → the non-empty documents, as plain objects. */
export function loadYamlDocuments(file: string): JsonObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS({ maxAliasCount: -1 }) as JsonObject | null;
    })
    .filter((d): d is JsonObject => d !== null && d !== undefined);
}

/**
 * Renders the kustomization in `dir` (a base or an overlay) with `kubectl
 * kustomize`, exactly as `kubectl apply -k` would apply it.
 * @throws when kubectl is missing or kustomize refuses the kustomization (its message included)
 */
export function renderKustomization(dir: string): Resource[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', resolve(dir)], { encoding: 'utf8', maxBuffer: MAX_RENDER_BYTES, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`kubectl kustomize ${dir} failed: ${stderr || (err as Error).message}`);
  }
  return parseAllDocuments(out)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${d.errors[0]!.message}`);
      return d.toJS() as Resource | null;
    })
    .filter((r): r is Resource => r !== null && r !== undefined);
}

/** The containers and init containers of a workload (Pod templates of Deployments, StatefulSets, …). */
export function containersOf(r: Resource): JsonObject[] {
  const spec = podSpecOf(r);
  if (!spec) return [];
  return [...((spec.initContainers as JsonObject[] | undefined) ?? []), ...((spec.containers as JsonObject[] | undefined) ?? [])];
}

/** The pod spec of a workload, or undefined for anything else. */
export function podSpecOf(r: Resource): JsonObject | undefined {
  const spec = r.spec as JsonObject | undefined;
  if (r.kind === 'Pod') return spec;
  const template = spec?.template as JsonObject | undefined;
  if (template && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(r.kind)) return template.spec as JsonObject;
  return undefined;
}

/** `kind/namespace/name`, the identity kustomize uses. */
export function resourceId(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

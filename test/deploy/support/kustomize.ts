/**
 * A small kustomize, enough for k8s/: resources (files and directories),
 * components, configMapGenerator (without name hashes), patches (JSON 6902
 * with a target, strategic merge by kind and name, `$patch: delete`), images
 * and namespace. Anything else in a kustomization throws, so the renderer
 * never silently ignores what real kustomize would do. When `kubectl` is on
 * the machine the tests also compare its `kubectl kustomize` output with this.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const KNOWN_FIELDS = new Set([
  'apiVersion', 'kind', 'namespace', 'resources', 'components', 'configMapGenerator', 'patches', 'images',
]);

/** Kinds that live outside namespaces (the ones a namespace transformer leaves alone). */
const CLUSTER_SCOPED = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass',
  'PriorityClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'APIService', 'IngressClass',
]);

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

function kustomizationFile(dir: string): string {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    const f = join(dir, name);
    if (existsSync(f)) return f;
  }
  throw new Error(`no kustomization in ${dir}`);
}

/** Renders the kustomization in `dir` (a base, an overlay or a component) to its resources. */
export function renderKustomization(dir: string): Resource[] {
  return build(resolve(dir), []);
}

function build(dir: string, inherited: Resource[]): Resource[] {
  const file = kustomizationFile(dir);
  const [k] = loadYamlDocuments(file);
  if (!k) throw new Error(`${file} is empty`);
  for (const key of Object.keys(k)) if (!KNOWN_FIELDS.has(key)) throw new Error(`${file}: "${key}" is not supported by the test renderer`);
  const isComponent = k.kind === 'Component';

  let out: Resource[] = [...inherited];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) out.push(...build(path, []));
    else out.push(...(loadYamlDocuments(path) as unknown as Resource[]));
  }
  for (const entry of (k.components as string[] | undefined) ?? []) out = build(resolve(dir, entry), out);

  for (const gen of (k.configMapGenerator as JsonObject[] | undefined) ?? []) {
    const options = (gen.options ?? {}) as JsonObject;
    if (options.disableNameSuffixHash !== true) throw new Error(`${file}: configMapGenerator ${String(gen.name)} needs disableNameSuffixHash in the test renderer`);
    const data: Record<string, string> = {};
    for (const f of (gen.files as string[] | undefined) ?? []) data[basename(f)] = readFileSync(resolve(dir, f), 'utf8');
    for (const lit of (gen.literals as string[] | undefined) ?? []) {
      const i = lit.indexOf('=');
      data[lit.slice(0, i)] = lit.slice(i + 1);
    }
    out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: String(gen.name) }, data });
  }

  for (const p of (k.patches as JsonObject[] | undefined) ?? []) {
    const text = typeof p.patch === 'string' ? p.patch : readFileSync(resolve(dir, String(p.path)), 'utf8');
    const docs = parseAllDocuments(text).map((d) => d.toJS() as Json);
    const body = docs[0];
    if (Array.isArray(body)) {
      const target = p.target as JsonObject | undefined;
      if (!target) throw new Error(`${file}: a JSON 6902 patch needs a target`);
      const matches = out.filter((r) => matchesTarget(r, target));
      if (matches.length === 0) throw new Error(`${file}: patch target ${JSON.stringify(target)} matches nothing`);
      for (const r of matches) applyJson6902(r as unknown as JsonObject, body as JsonObject[], file);
    } else if (body && typeof body === 'object') {
      const patch = body as JsonObject;
      const meta = patch.metadata as JsonObject;
      const matches = out.filter((r) => r.kind === patch.kind && r.metadata.name === meta.name);
      if (matches.length !== 1) throw new Error(`${file}: strategic merge patch for ${String(patch.kind)}/${String(meta.name)} matches ${matches.length} resources`);
      if (patch.$patch === 'delete') out = out.filter((r) => r !== matches[0]);
      else strategicMerge(matches[0] as unknown as JsonObject, patch, '');
    } else {
      throw new Error(`${file}: unreadable patch`);
    }
  }

  for (const img of (k.images as JsonObject[] | undefined) ?? []) {
    for (const r of out) for (const c of containersOf(r)) {
      const image = String(c.image);
      const name = image.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
      if (name !== img.name) continue;
      const newName = (img.newName as string | undefined) ?? name;
      c.image = img.digest ? `${newName}@${String(img.digest)}` : `${newName}:${String(img.newTag ?? (image.slice(name.length + 1) || 'latest'))}`;
    }
  }

  if (typeof k.namespace === 'string' && !isComponent) {
    for (const r of out) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
  }
  return out;
}

function matchesTarget(r: Resource, target: JsonObject): boolean {
  if (target.kind !== undefined && r.kind !== target.kind) return false;
  if (target.name !== undefined && r.metadata.name !== target.name) return false;
  if (target.group !== undefined && (r.apiVersion.includes('/') ? r.apiVersion.split('/')[0] : '') !== target.group) return false;
  if (target.version !== undefined && r.apiVersion.split('/').pop() !== target.version) return false;
  return true;
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

function decodePointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`bad JSON pointer ${path}`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJson6902(doc: JsonObject, ops: JsonObject[], file: string): void {
  for (const op of ops) {
    const parts = decodePointer(String(op.path));
    const last = parts.pop()!;
    let parent: Json = doc;
    for (const p of parts) {
      parent = Array.isArray(parent) ? parent[Number(p)]! : (parent as JsonObject)[p]!;
      if (parent === undefined || parent === null) throw new Error(`${file}: ${String(op.op)} ${String(op.path)}: no such path`);
    }
    const value = structuredClone(op.value) as Json;
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (op.op === 'test') {
        if (JSON.stringify(parent[i]) !== JSON.stringify(value)) throw new Error(`${file}: test ${String(op.path)} failed: ${JSON.stringify(parent[i])}`);
      } else if (op.op === 'add') parent.splice(i, 0, value);
      else if (op.op === 'replace') {
        if (i >= parent.length) throw new Error(`${file}: replace ${String(op.path)}: no such index`);
        parent[i] = value;
      } else if (op.op === 'remove') parent.splice(i, 1);
      else throw new Error(`${file}: op ${String(op.op)} is not supported by the test renderer`);
    } else {
      const obj = parent as JsonObject;
      if (op.op === 'test') {
        if (JSON.stringify(obj[last]) !== JSON.stringify(value)) throw new Error(`${file}: test ${String(op.path)} failed: ${JSON.stringify(obj[last])}`);
      } else if (op.op === 'add') obj[last] = value;
      else if (op.op === 'replace') {
        if (!(last in obj)) throw new Error(`${file}: replace ${String(op.path)}: no such path`);
        obj[last] = value;
      } else if (op.op === 'remove') delete obj[last];
      else throw new Error(`${file}: op ${String(op.op)} is not supported by the test renderer`);
    }
  }
}

/** Merge keys of the Kubernetes lists k8s/ patches touch (strategic merge patch). */
function mergeKey(field: string, items: Json[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'ports':
      return items.some((i) => i && typeof i === 'object' && 'containerPort' in i) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

function strategicMerge(target: JsonObject, patch: JsonObject, path: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new Error(`${path}/${key}: strategic merge directives are not supported by the test renderer`);
    if (value === null) {
      delete target[key];
      continue;
    }
    const current = target[key];
    if (Array.isArray(value) && Array.isArray(current)) {
      const k = mergeKey(key, [...current, ...value]);
      if (!k) {
        target[key] = structuredClone(value);
        continue;
      }
      // As kustomize orders the result: the patch's items first, then the others in their order.
      // (So a patched env entry moves ahead of the variables its $(NAME) references: see k8s/.)
      const merged: JsonObject[] = [];
      for (const item of value as JsonObject[]) {
        const existing = (current as JsonObject[]).find((c) => c[k] === item[k]);
        if (existing) strategicMerge(existing, item, `${path}/${key}`);
        merged.push(existing ?? (structuredClone(item) as JsonObject));
      }
      target[key] = [...merged, ...(current as JsonObject[]).filter((c) => !merged.includes(c))];
    } else if (value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)) {
      strategicMerge(current, value, `${path}/${key}`);
    } else {
      target[key] = structuredClone(value);
    }
  }
}

/** `kind/namespace/name`, the identity kustomize uses. */
export function resourceId(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

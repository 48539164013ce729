/**
 * k8s/ rendered offline by the real kustomize (`kubectl kustomize`, base and
 * every overlay; in CI kubectl must be there, elsewhere these checks are
 * skipped without it) and checked: against the Kubernetes schemas
 * (kubernetes-models), and against what the code reads — every variable, port,
 * probe and argument of the router and shard containers comes from the
 * config modules, and their values pass `load…Config`.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { Ajv } from 'ajv';
import { PipelineMetrics } from '../../src/observability/metrics.js';
import { RouterMetrics } from '../../router/metrics.js';
import { PM_WORKER_ENV, loadPmWorkerConfig } from '../../pm-worker/config.js';
import { processManagers } from '../../src/process-managers/index.js';
import { MIGRATE_ENV } from '../../cli/migrate.js';
import { KUBECTL_AVAILABLE, containersOf, loadYamlDocuments, podSpecOf, renderKustomization, resourceId, type Resource } from './support/kustomize.js';
import { skipWithout } from '../support/ci.js';
import { EXTERNAL_SECRET_VALUE, resolveEnv } from './support/k8s-env.js';
import { ROLES, hostOf, isRole, portOf, type Role, type RoleSettings } from './support/roles.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const K8S = join(ROOT, 'k8s');
const NAMESPACE = 'shardwrite';
/** Our image, as named in the base (overlays set its registry and tag). */
const IMAGE = /(^|\/)shardwrite(:[^/]+)?$/;

/** Every kustomization a user can apply: the base and each overlay. */
const TARGETS = [
  'base',
  ...readdirSync(join(K8S, 'overlays'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `overlays/${d.name}`),
];
const NO_KUBECTL = skipWithout('kubectl', KUBECTL_AVAILABLE, 'rendering k8s/ with kubectl kustomize');
const rendered = new Map(NO_KUBECTL ? [] : TARGETS.map((t) => [t, renderKustomization(join(K8S, t))]));

// Parsed YAML of every shape the manifests hold, walked by path.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a document tree typed field by field would be the manifests again
type Obj = Record<string, any>;

function byKind(resources: readonly Resource[], kind: string): Obj[] {
  return resources.filter((r) => r.kind === kind);
}

function find(resources: readonly Resource[], kind: string, name: string): Obj {
  const r = resources.find((x) => x.kind === kind && x.metadata.name === name);
  if (!r) throw new Error(`${kind}/${name} is not rendered`);
  return r;
}

function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Workloads (Deployments, StatefulSets) whose pod template `selector` matches. */
function workloadsSelectedBy(resources: readonly Resource[], selector: Record<string, string>): Obj[] {
  return (resources as readonly Obj[]).filter((r) => podSpecOf(r as Resource) && selects(selector, r.spec.template.metadata.labels));
}

/** Our containers: the ones running the shardwrite image, with the role their argument selects. */
function ourContainers(resources: readonly Resource[]): { workload: Obj; container: Obj; role: Role }[] {
  const out: { workload: Obj; container: Obj; role: Role }[] = [];
  for (const r of resources) {
    for (const c of containersOf(r) as Obj[]) {
      if (!IMAGE.test(String(c.image))) continue;
      const role = c.args?.[0];
      // The pm worker serves no gRPC, the migration step and the rebalancer are no servers: each has checks of its own below.
      if (role === 'pm-worker' || role === 'migrate' || c.name === 'rebalancer') continue;
      if (!isRole(role)) throw new Error(`${resourceId(r)} container ${c.name}: args must start with shard or router (got ${JSON.stringify(c.args)})`);
      out.push({ workload: r, container: c, role });
    }
  }
  return out;
}

/** The pod names a workload creates (a StatefulSet's are `<name>-<ordinal>`). */
function podNames(w: Obj): string[] {
  if (w.kind === 'StatefulSet') return Array.from({ length: w.spec.replicas ?? 1 }, (_, i) => `${w.metadata.name}-${i}`);
  return [`${w.metadata.name}-7d4b9c-x2x7q`];
}

/** The environment of one pod's container, the config module's view of it, and which variables only assemble others. */
function podEnv(resources: readonly Resource[], container: Obj, role: Role, pod: string): { env: Record<string, string>; settings: RoleSettings; helpers: string[] } {
  const resolved = resolveEnv(container, { name: pod, namespace: NAMESPACE }, resources);
  const contract = ROLES[role];
  const helpers = Object.keys(resolved.values).filter((n) => !contract.env.includes(n));
  // A variable the config module does not read must at least be used to build one it does.
  for (const h of helpers) expect(resolved.referenced.has(h), `${pod}: ${h} is neither read by the ${role} config nor used in another variable`).toBe(true);
  // (A key of a Secret created outside the manifests resolves to EXTERNAL_SECRET_VALUE, URL-safe like the README asks.)
  return { env: resolved.values, settings: contract.load(resolved.values), helpers };
}

async function validateWithModel(r: Resource): Promise<void> {
  const [group, version] = r.apiVersion.includes('/') ? r.apiVersion.split('/') : ['', r.apiVersion];
  const module =
    group === ''
      ? `kubernetes-models/${version}`
      : group === 'monitoring.coreos.com'
        ? `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}`
        : `kubernetes-models/${group}/${version}`;
  const models = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = models[r.kind];
  if (!Model) throw new Error(`${r.apiVersion} ${r.kind} has no model`);
  new Model(r).validate();
}

/**
 * CloudNativePG resources have no published model package: a schema of the
 * fields k8s/ uses (from the CloudNativePG API reference), closed so a typo fails.
 */
const CNPG_SCHEMAS: Record<string, object> = {
  Cluster: {
    type: 'object',
    required: ['spec'],
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['instances', 'storage'],
        properties: {
          instances: { type: 'integer', minimum: 1 },
          imageName: { type: 'string' },
          postgresql: {
            type: 'object',
            additionalProperties: false,
            properties: {
              synchronous: {
                type: 'object',
                additionalProperties: false,
                required: ['method', 'number'],
                properties: { method: { enum: ['any', 'first'] }, number: { type: 'integer', minimum: 1 } },
              },
              parameters: { type: 'object', additionalProperties: { type: 'string' } },
            },
          },
          bootstrap: {
            type: 'object',
            additionalProperties: false,
            properties: {
              initdb: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  database: { type: 'string' },
                  owner: { type: 'string' },
                  secret: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } },
                },
              },
            },
          },
          // CloudNativePG's RoleConfiguration (managed roles).
          managed: {
            type: 'object',
            additionalProperties: false,
            properties: {
              roles: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['name'],
                  properties: {
                    name: { type: 'string' },
                    ensure: { enum: ['present', 'absent'] },
                    login: { type: 'boolean' },
                    createrole: { type: 'boolean' },
                    createdb: { type: 'boolean' },
                    superuser: { type: 'boolean' },
                    inherit: { type: 'boolean' },
                    inRoles: { type: 'array', items: { type: 'string' } },
                    passwordSecret: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } },
                  },
                },
              },
            },
          },
          storage: { type: 'object', additionalProperties: false, required: ['size'], properties: { size: { type: 'string' }, storageClass: { type: 'string' } } },
          resources: {
            type: 'object',
            additionalProperties: false,
            properties: { requests: { type: 'object' }, limits: { type: 'object' } },
          },
          affinity: {
            type: 'object',
            additionalProperties: false,
            properties: { enablePodAntiAffinity: { type: 'boolean' }, topologyKey: { type: 'string' } },
          },
          monitoring: { type: 'object', additionalProperties: false, properties: { enablePodMonitor: { type: 'boolean' } } },
        },
      },
    },
  },
  Database: {
    type: 'object',
    required: ['spec'],
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'owner', 'cluster'],
        properties: {
          name: { type: 'string' },
          owner: { type: 'string' },
          cluster: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } },
        },
      },
    },
  },
};
/**
 * cert-manager resources (no published model package either): the fields k8s/
 * uses, from the cert-manager v1 API reference, closed so a typo fails.
 */
const ISSUER_REF = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'kind'],
  properties: { name: { type: 'string' }, kind: { enum: ['Issuer', 'ClusterIssuer'] }, group: { const: 'cert-manager.io' } },
};
const CERT_MANAGER_SCHEMAS: Record<string, object> = {
  Issuer: {
    type: 'object',
    required: ['spec'],
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          selfSigned: { type: 'object', additionalProperties: false },
          ca: { type: 'object', additionalProperties: false, required: ['secretName'], properties: { secretName: { type: 'string' } } },
        },
      },
    },
  },
  Certificate: {
    type: 'object',
    required: ['spec'],
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['secretName', 'issuerRef'],
        properties: {
          secretName: { type: 'string' },
          isCA: { type: 'boolean' },
          commonName: { type: 'string', maxLength: 64 },
          dnsNames: { type: 'array', items: { type: 'string' } },
          uris: { type: 'array', items: { type: 'string' } },
          ipAddresses: { type: 'array', items: { type: 'string' } },
          duration: { type: 'string', pattern: '^\\d+h$' },
          renewBefore: { type: 'string', pattern: '^\\d+h$' },
          privateKey: {
            type: 'object',
            additionalProperties: false,
            properties: { algorithm: { enum: ['RSA', 'ECDSA', 'Ed25519'] }, size: { type: 'integer' }, rotationPolicy: { enum: ['Never', 'Always'] } },
          },
          usages: { type: 'array', items: { enum: ['server auth', 'client auth', 'digital signature', 'key encipherment', 'cert sign', 'crl sign'] } },
          issuerRef: ISSUER_REF,
        },
      },
    },
  },
};
const ajv = new Ajv({ allErrors: true });

function validateResource(r: Resource): Promise<void> {
  if (r.apiVersion === 'cert-manager.io/v1') {
    const schema = CERT_MANAGER_SCHEMAS[r.kind];
    if (!schema) throw new Error(`${r.kind} of cert-manager is not modelled`);
    const validate = ajv.compile(schema);
    if (!validate(r)) throw new Error(`${resourceId(r)}: ${ajv.errorsText(validate.errors)}`);
    return Promise.resolve();
  }
  if (r.apiVersion === 'postgresql.cnpg.io/v1') {
    const schema = CNPG_SCHEMAS[r.kind];
    if (!schema) throw new Error(`${r.kind} of CloudNativePG is not modelled`);
    const validate = ajv.compile(schema);
    if (!validate(r)) throw new Error(`${resourceId(r)}: ${ajv.errorsText(validate.errors)}`);
    return Promise.resolve();
  }
  return validateWithModel(r);
}

/** The PostgreSQL a database URL's host names: `<statefulset>-<n>.<service>` or a CloudNativePG `<cluster>-rw`. */
function postgresBehind(resources: readonly Resource[], url: string): { instance: string; ordinal: number; database: string; user: string } {
  const u = new URL(url);
  const database = u.pathname.slice(1);
  const host = u.hostname;
  const cnpg = /^(.+)-rw$/.exec(host);
  if (cnpg) {
    const cluster = find(resources, 'Cluster', cnpg[1]!);
    expect(Number(u.port)).toBe(5432);
    return { instance: cluster.metadata.name, ordinal: Number(/-(\d+)$/.exec(cluster.metadata.name)?.[1]), database, user: decodeURIComponent(u.username) };
  }
  const [pod, service] = host.split('.');
  const m = /^(.+)-(\d+)$/.exec(pod!);
  expect(m, `${host} is not <pod>.<service>`).toBeTruthy();
  const sts = find(resources, 'StatefulSet', m![1]!);
  expect(sts.spec.serviceName).toBe(service);
  const headless = find(resources, 'Service', service!);
  expect(headless.spec.clusterIP).toBe('None');
  const ordinal = Number(m![2]);
  expect(ordinal).toBeLessThan(sts.spec.replicas);
  const c = sts.spec.template.spec.containers[0];
  expect(c.ports.map((p: Obj) => p.containerPort)).toContain(Number(u.port));
  return { instance: pod!, ordinal, database, user: decodeURIComponent(u.username) };
}

/** Where a database URL points (host, port, database, options), whoever logs in. */
function placeOf(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}${u.search}`;
}

/** The Secret a container's variable comes from (undefined for a plain value). */
function secretOf(container: Obj, name: string): { name: string; key: string } | undefined {
  return (container.env as Obj[] | undefined)?.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
}

/** Each process kind's own database login Secret, and the variables of the migrate Job that create it. */
const LOGIN_SECRETS = { shard: 'shardwrite-db-shard', router: 'shardwrite-db-router', rebalancer: 'shardwrite-db-rebalancer', 'pm-worker': 'shardwrite-db-pm-worker' } as const;
const MIGRATE_KIND = { shard: 'SHARD', router: 'ROUTER', rebalancer: 'REBALANCER', 'pm-worker': 'PM' } as const;

describe.skipIf(NO_KUBECTL).each(TARGETS)('k8s/%s', (target) => {
  const resources = rendered.get(target)!;

  it('renders to resources that are valid against the Kubernetes schemas', async () => {
    expect(resources.length).toBeGreaterThan(10);
    const ids = resources.map(resourceId);
    expect(new Set(ids).size, 'no resource twice').toBe(ids.length);
    for (const r of resources) await validateResource(r);
  });

  it('puts everything in the shardwrite namespace, which enforces the restricted pod security standard', () => {
    const ns = find(resources, 'Namespace', NAMESPACE);
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const r of resources) if (r.kind !== 'Namespace') expect(r.metadata.namespace, resourceId(r)).toBe(NAMESPACE);
  });

  it('runs every container as non-root, read-only, without privilege escalation or capabilities, with requests and limits', () => {
    for (const r of resources) {
      const pod: Obj | undefined = podSpecOf(r);
      if (!pod) continue;
      expect(pod.securityContext?.runAsNonRoot, resourceId(r)).toBe(true);
      expect(pod.securityContext?.seccompProfile?.type, resourceId(r)).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken, resourceId(r)).toBe(false);
      expect(pod.enableServiceLinks, `${resourceId(r)}: no injected service variables`).toBe(false);
      for (const c of containersOf(r) as Obj[]) {
        const where = `${resourceId(r)} ${c.name}`;
        const uid = c.securityContext?.runAsUser ?? pod.securityContext.runAsUser;
        expect(uid, `${where}: a numeric non-root user`).toBeGreaterThan(0);
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
        expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL']);
        expect(c.securityContext?.privileged, where).not.toBe(true);
        expect(c.resources?.requests?.cpu, where).toBeDefined();
        expect(c.resources?.requests?.memory, where).toBeDefined();
        expect(c.resources?.limits?.cpu, where).toBeDefined();
        expect(c.resources?.limits?.memory, where).toBeDefined();
        expect(String(c.image), `${where}: a pinned tag`).toMatch(/:[\w.-]+$/);
        expect(String(c.image), where).not.toMatch(/:latest$/);
      }
    }
  });

  it('gives every Service, PodDisruptionBudget, autoscaler and monitor something to select', () => {
    for (const s of byKind(resources, 'Service')) {
      const pods = workloadsSelectedBy(resources, s.spec.selector);
      expect(pods.length, `Service ${s.metadata.name} selects a workload`).toBeGreaterThan(0);
      for (const p of s.spec.ports) {
        // A named target port must be a container port of every selected pod.
        for (const w of pods) {
          const ports = w.spec.template.spec.containers.flatMap((c: Obj) => c.ports ?? []);
          const match = ports.find((cp: Obj) => (typeof p.targetPort === 'string' ? cp.name === p.targetPort : cp.containerPort === (p.targetPort ?? p.port)));
          expect(match, `Service ${s.metadata.name} port ${p.name} → ${w.metadata.name}`).toBeDefined();
        }
      }
    }
    for (const pdb of byKind(resources, 'PodDisruptionBudget')) {
      expect(workloadsSelectedBy(resources, pdb.spec.selector.matchLabels).length, `PDB ${pdb.metadata.name}`).toBe(1);
    }
    for (const w of resources.filter((r) => ['Deployment', 'StatefulSet'].includes(r.kind)) as Obj[]) {
      expect(selects(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${resourceId(w as Resource)} selects its own pods`).toBe(true);
    }
    for (const hpa of byKind(resources, 'HorizontalPodAutoscaler')) {
      const d = find(resources, hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name);
      // A `replicas` in the Deployment would be reset on every apply, fighting the autoscaler.
      expect(d.spec.replicas, `${hpa.spec.scaleTargetRef.name} leaves replicas to the autoscaler`).toBeUndefined();
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
      for (const c of d.spec.template.spec.containers) expect(c.resources.requests.cpu, 'CPU utilisation needs a CPU request').toBeDefined();
    }
    for (const sm of byKind(resources, 'ServiceMonitor')) {
      const services = byKind(resources, 'Service').filter((s) => selects(sm.spec.selector.matchLabels, s.metadata.labels));
      expect(services.length, `ServiceMonitor ${sm.metadata.name}`).toBeGreaterThan(0);
      for (const e of sm.spec.endpoints) for (const s of services) expect(s.spec.ports.map((p: Obj) => p.name)).toContain(e.port);
    }
  });

  it('has disruption budgets for the routers, the shards and the databases it runs', () => {
    const covered = (w: Obj) => byKind(resources, 'PodDisruptionBudget').some((p) => selects(p.spec.selector.matchLabels, w.spec.template.metadata.labels));
    for (const { workload } of ourContainers(resources)) expect(covered(workload), workload.metadata.name).toBe(true);
    for (const sts of byKind(resources, 'StatefulSet')) expect(covered(sts), sts.metadata.name).toBe(true);
  });

  it('runs the shards as a StatefulSet behind a headless Service, started in parallel, and the router as an autoscaled Deployment', () => {
    const containers = ourContainers(resources);
    const shard = containers.filter((c) => c.role === 'shard');
    const router = containers.filter((c) => c.role === 'router');
    expect(shard).toHaveLength(1);
    expect(router).toHaveLength(1);
    const sts = shard[0]!.workload;
    expect(sts.kind).toBe('StatefulSet');
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(find(resources, 'Service', sts.spec.serviceName).spec.clusterIP).toBe('None');
    const dep = router[0]!.workload;
    expect(dep.kind).toBe('Deployment');
    expect(byKind(resources, 'HorizontalPodAutoscaler').some((h) => h.spec.scaleTargetRef.name === dep.metadata.name)).toBe(true);
    const routerService = byKind(resources, 'Service').find((s) => selects(s.spec.selector, dep.spec.template.metadata.labels));
    expect(routerService?.spec.clusterIP).not.toBe('None');
  });

  it('gives the router and shard containers only variables their config module reads, with values it accepts', () => {
    for (const { workload, container, role } of ourContainers(resources)) {
      // The image's ENTRYPOINT runs the role given as the only argument.
      expect(container.command, `${workload.metadata.name}: keeps the image's ENTRYPOINT`).toBeUndefined();
      expect(container.args).toEqual([role]);
      for (const pod of podNames(workload)) {
        const { env, settings, helpers } = podEnv(resources, container, role, pod);
        for (const h of helpers) expect(role === 'shard' ? ['POSTGRES_USER', 'POSTGRES_PASSWORD', 'REDIS_PASSWORD'] : ['POSTGRES_USER', 'POSTGRES_PASSWORD']).toContain(h);
        expect(hostOf(settings.grpcAddress), 'listens on every interface').toBe('0.0.0.0');
        expect(settings.metricsAddress && hostOf(settings.metricsAddress)).toBe('0.0.0.0');
        if (role === 'shard') expect(settings.shardId, 'SHARD_ID is the pod name, the stable ring id').toBe(pod);
        expect(Object.keys(env).length).toBeGreaterThan(3);
      }
    }
  });

  it('publishes, probes and scrapes exactly the ports the processes listen on', () => {
    for (const { workload, container, role } of ourContainers(resources)) {
      const { settings } = podEnv(resources, container, role, podNames(workload)[0]!);
      const grpcPort = portOf(settings.grpcAddress);
      const metricsPort = portOf(settings.metricsAddress!);
      // The kubelet's gRPC probes cannot speak TLS: they use the plaintext health-only port.
      const healthPort = portOf(settings.healthAddress!);
      const ports = Object.fromEntries(container.ports.map((p: Obj) => [p.name, p.containerPort]));
      expect(ports).toEqual({ grpc: grpcPort, metrics: metricsPort, health: healthPort });
      const portRef = (p: number | string) => (typeof p === 'string' ? ports[p] : p);
      // Readiness is the native gRPC probe on grpc.health.v1 (overall health, service "").
      expect(container.readinessProbe.grpc.port).toBe(healthPort);
      expect(container.readinessProbe.grpc.service ?? '').toBe('');
      for (const probe of ['startupProbe', 'livenessProbe']) {
        const p = container[probe];
        expect(p, `${workload.metadata.name} ${probe}`).toBeDefined();
        // A TCP probe may check the TLS port itself; a gRPC probe must use the health port.
        if (p.grpc) expect(p.grpc.port, `${workload.metadata.name} ${probe} port`).toBe(healthPort);
        else expect(portRef(p.tcpSocket?.port), `${workload.metadata.name} ${probe} port`).toBe(grpcPort);
      }
      if (role === 'shard') for (const probe of ['startupProbe', 'livenessProbe']) expect(container[probe].grpc.port).toBe(healthPort);
      const annotations = workload.spec.template.metadata.annotations;
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(Number(annotations['prometheus.io/port'])).toBe(metricsPort);
      expect(annotations['prometheus.io/path']).toBe('/metrics');
      // The Services in front of the pods forward to the same ports.
      for (const s of byKind(resources, 'Service').filter((s) => selects(s.spec.selector, workload.spec.template.metadata.labels))) {
        for (const p of s.spec.ports) expect([grpcPort, metricsPort]).toContain(portRef(p.targetPort));
      }
    }
  });

  it('ships secure: TLS from cert-manager certificates of one CA on every router and shard, authentication on, never insecure mode', () => {
    const certificates = byKind(resources, 'Certificate');
    const issuers = byKind(resources, 'Issuer');
    const containers = ourContainers(resources);
    const issuerOf = new Set<string>();
    for (const { workload, container, role } of containers) {
      const where = workload.metadata.name;
      const pod = workload.spec.template.spec;
      for (const name of podNames(workload)) {
        const { env, settings } = podEnv(resources, container, role, name);
        expect(env.SHARDWRITE_INSECURE ?? 'false', `${where}: insecure mode`).not.toBe('true');
        expect(settings.tls, `${where}: TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE`).toBeDefined();
        // Each file is in a mounted Secret volume that a Certificate fills.
        const secretOf = (file: string) => {
          const mount = (container.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`));
          expect(mount, `${where}: ${file} is in a mounted volume`).toBeDefined();
          expect(mount!.subPath, `${where}: mounted without subPath, so renewals reach the process`).toBeUndefined();
          const volume = (pod.volumes as Obj[]).find((v) => v.name === mount!.name)!;
          return { secret: volume.secret?.secretName as string, key: file.slice(mount!.mountPath.length + 1) };
        };
        const cert = secretOf(settings.tls!.certFile);
        expect(secretOf(settings.tls!.keyFile)).toEqual({ secret: cert.secret, key: 'tls.key' });
        expect(secretOf(settings.tls!.caFile)).toEqual({ secret: cert.secret, key: 'ca.crt' });
        expect(cert.key).toBe('tls.crt');
        const certificate = certificates.find((c) => c.spec.secretName === cert.secret);
        expect(certificate, `${where}: a Certificate fills Secret ${cert.secret}`).toBeDefined();
        expect(certificate!.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
        const issuer = issuers.find((i) => i.metadata.name === certificate!.spec.issuerRef.name);
        expect(issuer?.spec.ca, `${where}: issued by a CA Issuer among the resources`).toBeDefined();
        issuerOf.add(issuer!.metadata.name);
        // Authentication: every AUTH_* setting the role reads that the manifest can give.
        const auth = ROLES[role].env.filter((k) => k.startsWith('AUTH_'));
        if (auth.length > 0)
          expect(
            auth.some((k) => (env[k] ?? '') !== ''),
            `${where}: authentication configured`,
          ).toBe(true);
        // The router names shards by the ring's host names: the shard certificate must cover them.
        if (role === 'shard') {
          const hosts = (settings.ringBootstrap ?? []).map((s) => hostOf(s.address));
          for (const host of hosts) {
            const covered = (certificate!.spec.dnsNames as string[]).some((d) => d === host || (d.startsWith('*.') && host.endsWith(d.slice(1)) && !host.slice(0, -d.length + 1).includes('.')));
            expect(covered, `shard certificate covers ${host}`).toBe(true);
          }
        }
        if (role === 'router') expect(certificate!.spec.commonName, 'the identity shards accept on their link').toBe('router');
        // Production: every PostgreSQL connection verifies the server's certificate and name.
        if (target.includes('production')) {
          for (const url of [settings.databaseUrl, settings.ringDatabaseUrl].filter((u): u is string => u !== undefined)) {
            const u = new URL(url);
            expect(u.searchParams.get('sslmode'), `${where}: ${u.hostname}`).toBe('verify-full');
            const root = u.searchParams.get('sslrootcert')!;
            const mount = (container.volumeMounts as Obj[]).find((m) => root.startsWith(`${m.mountPath}/`));
            expect(mount, `${where}: sslrootcert ${root} is mounted`).toBeDefined();
            const volume = (pod.volumes as Obj[]).find((v) => v.name === mount!.name)!;
            const paths = (volume.projected?.sources ?? []).flatMap((s: Obj) => (s.secret?.items ?? []).map((i: Obj) => ({ secret: s.secret.name, path: i.path })));
            const source = paths.find((p: { path: string }) => root === `${mount!.mountPath}/${p.path}`);
            expect(source?.secret, `${where}: the CA of ${u.hostname}`).toBe(`${u.hostname.replace(/-rw$/, '')}-ca`);
          }
        }
      }
    }
    expect(issuerOf.size, 'one CA signs every process').toBe(1);
  });

  it('drains within the termination grace period: preStop sleep plus SHUTDOWN_GRACE_MS, with time left to flush', () => {
    for (const { workload, container, role } of ourContainers(resources)) {
      const { settings } = podEnv(resources, container, role, podNames(workload)[0]!);
      const preStopMs = container.lifecycle.preStop.sleep.seconds * 1000;
      const graceMs = workload.spec.template.spec.terminationGracePeriodSeconds * 1000;
      expect(preStopMs).toBeGreaterThan(0);
      // After the in-flight calls: the pipeline drains, the writer flushes, the pools close.
      expect(graceMs - (preStopMs + settings.shutdownGraceMs), `${workload.metadata.name}: margin for the flush`).toBeGreaterThanOrEqual(5000);
      // A draining pod is NOT_SERVING; the liveness probe must not kill it before the grace period ends.
      const live = container.livenessProbe;
      expect(live.periodSeconds * live.failureThreshold * 1000).toBeGreaterThanOrEqual(preStopMs + settings.shutdownGraceMs);
    }
  });

  it("connects shard n to its own PostgreSQL, every process to one ring database on shard-0's, and the shards to Redis", () => {
    const shard = ourContainers(resources).find((c) => c.role === 'shard')!;
    const router = ourContainers(resources).find((c) => c.role === 'router')!;
    const pods = podNames(shard.workload);
    const instances = new Set<string>();
    const ringUrls = new Set<string>();
    for (const [n, pod] of pods.entries()) {
      const { settings } = podEnv(resources, shard.container, 'shard', pod);
      const db = postgresBehind(resources, settings.databaseUrl!);
      expect(db.ordinal, `${pod} uses the PostgreSQL with its own ordinal`).toBe(n);
      instances.add(db.instance);
      ringUrls.add(placeOf(settings.ringDatabaseUrl!));
      // The database exists on that PostgreSQL; the shard's login is not its owner (the migrate Job makes it).
      if (target.includes('production')) {
        const cluster = find(resources, 'Cluster', db.instance);
        expect(cluster.spec.bootstrap.initdb.database).toBe(db.database);
        expect(db.user).not.toBe(cluster.spec.bootstrap.initdb.owner);
        expect(cluster.spec.bootstrap.initdb.secret.name).toBe('postgres-credentials');
      } else {
        const pg = find(resources, 'StatefulSet', db.instance.replace(/-\d+$/, '')).spec.template.spec.containers[0];
        const pgEnv = resolveEnv(pg, { name: db.instance, namespace: NAMESPACE }, resources).values;
        expect(pgEnv.POSTGRES_DB).toBe(db.database);
        if (pgEnv.POSTGRES_USER !== EXTERNAL_SECRET_VALUE) expect(db.user).not.toBe(pgEnv.POSTGRES_USER);
      }
      // The init container waits for exactly these databases.
      const wait = shard.workload.spec.template.spec.initContainers.find((c: Obj) => c.name === 'wait-for-postgres');
      const waitEnv = resolveEnv(wait, { name: pod, namespace: NAMESPACE }, resources).values;
      expect(waitEnv.DATABASE_HOST).toBe(new URL(settings.databaseUrl!).hostname);
      expect(waitEnv.RING_DATABASE_HOST).toBe(new URL(settings.ringDatabaseUrl!).hostname);
      // Redis: the Service of that name, on the port it forwards to Redis.
      const redis = new URL(settings.redisUrl!);
      const svc = find(resources, 'Service', redis.hostname);
      expect(svc.spec.ports.map((p: Obj) => p.port)).toContain(Number(redis.port));
    }
    expect(instances.size, 'one PostgreSQL per shard').toBe(pods.length);
    const { settings: routerSettings } = podEnv(resources, router.container, 'router', podNames(router.workload)[0]!);
    ringUrls.add(placeOf(routerSettings.ringDatabaseUrl!));
    expect(ringUrls.size, 'routers and shards share one ring database').toBe(1);
    const ring = postgresBehind(resources, routerSettings.ringDatabaseUrl!);
    expect(ring.ordinal, "the ring lives on shard-0's PostgreSQL").toBe(0);
    expect(ring.database).toBe('shardwrite_ring');
    if (target.includes('production')) {
      const dbs = byKind(resources, 'Database').filter((d) => d.spec.name === ring.database);
      expect(dbs).toHaveLength(1);
      expect(dbs[0]!.spec.cluster.name).toBe(ring.instance);
      expect(dbs[0]!.spec.owner).toBe(find(resources, 'Cluster', ring.instance).spec.bootstrap.initdb.owner);
    } else {
      const wait = router.workload.spec.template.spec.initContainers.find((c: Obj) => c.name === 'wait-for-postgres');
      expect(resolveEnv(wait, { name: 'router', namespace: NAMESPACE }, resources).values.RING_DATABASE_HOST).toBe(new URL(routerSettings.ringDatabaseUrl!).hostname);
    }
  });

  it('lets every connection the processes make through the NetworkPolicies, and keeps other pods out', () => {
    const policies = byKind(resources, 'NetworkPolicy');
    for (const p of policies) expect(workloadsSelectedBy(resources, p.spec.podSelector.matchLabels).length, `NetworkPolicy ${p.metadata.name}`).toBeGreaterThan(0);
    /** Would `from` (pod labels) reach `to` (a workload) on TCP `port`? */
    const admitted = (from: Record<string, string>, to: Obj, port: number): boolean => {
      const labels = to.spec.template.metadata.labels;
      const selecting = policies.filter((p) => selects(p.spec.podSelector.matchLabels ?? {}, labels) && p.spec.policyTypes.includes('Ingress'));
      if (selecting.length === 0) return true;
      const named = Object.fromEntries(to.spec.template.spec.containers.flatMap((c: Obj) => c.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
      return selecting.some((p) =>
        (p.spec.ingress ?? []).some(
          (rule: Obj) =>
            (rule.from === undefined || rule.from.some((f: Obj) => f.podSelector && !f.namespaceSelector && selects(f.podSelector.matchLabels ?? {}, from))) &&
            (rule.ports === undefined || rule.ports.some((rp: Obj) => (typeof rp.port === 'string' ? named[rp.port] : rp.port) === port)),
        ),
      );
    };
    /** The workload behind `host` (`<pod>.<headless service>` or `<service>`); undefined outside the manifests (CloudNativePG). */
    const workloadOf = (host: string): Obj | undefined => {
      const [first, service] = host.split('.');
      if (service) return find(resources, 'StatefulSet', first!.replace(/-\d+$/, ''));
      const svc = (resources as readonly Resource[] as readonly Obj[]).find((r) => r.kind === 'Service' && r.metadata.name === first);
      return svc ? workloadsSelectedBy(resources, svc.spec.selector)[0] : undefined;
    };
    const connections: { from: Obj; to: Obj; port: number; what: string }[] = [];
    for (const { workload, container, role } of ourContainers(resources)) {
      const { settings } = podEnv(resources, container, role, podNames(workload)[0]!);
      const urls = [settings.ringDatabaseUrl, settings.databaseUrl, settings.redisUrl].filter((u): u is string => u !== undefined);
      for (const u of urls) {
        const url = new URL(u);
        const to = workloadOf(url.hostname);
        if (to) connections.push({ from: workload, to, port: Number(url.port), what: `${role} → ${url.hostname}` });
      }
      if (role === 'router') {
        for (const s of settings.ringBootstrap ?? []) connections.push({ from: workload, to: workloadOf(hostOf(s.address))!, port: portOf(s.address), what: `router → ${s.address}` });
      }
    }
    expect(connections.length).toBeGreaterThanOrEqual(3);
    for (const c of connections) expect(admitted(c.from.spec.template.metadata.labels, c.to, c.port), c.what).toBe(true);
    // Anything else in the cluster reaches neither the shards nor their stores.
    const stranger = { app: 'something-else' };
    for (const c of connections) {
      if (policies.some((p) => selects(p.spec.podSelector.matchLabels, c.to.spec.template.metadata.labels))) {
        expect(admitted(stranger, c.to, c.port), `a stranger → ${c.what.split(' → ')[1]}`).toBe(false);
      }
    }
  });

  it("runs the pm worker with only variables its config reads, against the router and the routers' ring database, scraped on its metrics port", () => {
    const workers = (resources as readonly Resource[] as readonly Obj[]).flatMap((r) =>
      (containersOf(r as Resource) as Obj[]).filter((c) => IMAGE.test(String(c.image)) && c.args?.[0] === 'pm-worker').map((c) => ({ workload: r, container: c })),
    );
    expect(workers).toHaveLength(1);
    const { workload, container } = workers[0]!;
    expect(workload.kind).toBe('Deployment');
    expect(container.command).toBeUndefined();
    expect(container.args).toEqual(['pm-worker']);
    const resolved = resolveEnv(container, { name: `${workload.metadata.name}-7d4b9c-x2x7q`, namespace: NAMESPACE }, resources);
    const reads = new Set<string>([...PM_WORKER_ENV, ...processManagers.flatMap((d) => d.settingsEnv)]);
    for (const name of Object.keys(resolved.values)) {
      if (!reads.has(name)) expect(['POSTGRES_USER', 'POSTGRES_PASSWORD'], `${name} is not read by pm-worker/config.ts`).toContain(name);
    }
    const config = loadPmWorkerConfig(resolved.values, processManagers);
    const router = ourContainers(resources).find((c) => c.role === 'router')!;
    const routerSettings = podEnv(resources, router.container, 'router', podNames(router.workload)[0]!).settings;
    expect(placeOf(config.databaseUrl), 'the same ring database as the routers').toBe(placeOf(routerSettings.ringDatabaseUrl!));
    const [host, port] = config.source.split(':');
    const routerService = find(resources, 'Service', host!);
    expect(selects(routerService.spec.selector, router.workload.spec.template.metadata.labels)).toBe(true);
    expect(routerService.spec.ports.map((p: Obj) => p.port)).toContain(Number(port));
    const metricsPort = portOf(config.metricsAddress!);
    expect(hostOf(config.metricsAddress!)).toBe('0.0.0.0');
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: metricsPort }]);
    expect(Number(workload.spec.template.metadata.annotations['prometheus.io/port'])).toBe(metricsPort);
    const wait = workload.spec.template.spec.initContainers.find((c: Obj) => c.name === 'wait-for-postgres');
    expect(resolveEnv(wait, { name: 'pm-worker', namespace: NAMESPACE }, resources).values.RING_DATABASE_HOST).toBe(new URL(config.databaseUrl).hostname);
  });

  it("bootstraps the ring with exactly the StatefulSet's pods at their stable names", () => {
    const shard = ourContainers(resources).find((c) => c.role === 'shard')!;
    const sts = shard.workload;
    const service = find(resources, 'Service', sts.spec.serviceName);
    const grpcServicePort = service.spec.ports.find((p: Obj) => p.name === 'grpc').port;
    const expected = podNames(sts).map((id) => ({ id, address: `${id}.${service.metadata.name}:${grpcServicePort}` }));
    for (const { workload, container, role } of ourContainers(resources)) {
      const { settings } = podEnv(resources, container, role, podNames(workload)[0]!);
      expect(settings.ringBootstrap, `${role}: RING_BOOTSTRAP`).toEqual(expected);
    }
  });

  /** Every process that logs in to PostgreSQL: its workload, main container, the kind of login, and the URLs it uses. */
  function processLogins(): { kind: keyof typeof LOGIN_SECRETS; workload: Obj; container: Obj; pod: string; urls: string[]; env: Record<string, string> }[] {
    const out: ReturnType<typeof processLogins> = [];
    for (const { workload, container, role } of ourContainers(resources)) {
      for (const pod of podNames(workload)) {
        const { settings, env } = podEnv(resources, container, role, pod);
        out.push({ kind: role, workload, container, pod, env, urls: [settings.databaseUrl, settings.ringDatabaseUrl].filter((u): u is string => u !== undefined) });
      }
    }
    for (const [kind, name] of [
      ['pm-worker', 'pm-worker'],
      ['rebalancer', 'rebalancer'],
    ] as const) {
      const workload = find(resources, 'Deployment', name);
      const container = workload.spec.template.spec.containers[0];
      const env = resolveEnv(container, { name: `${name}-7d4b9c-x2x7q`, namespace: NAMESPACE }, resources).values;
      out.push({ kind, workload, container, pod: name, env, urls: [env.RING_DATABASE_URL!] });
    }
    return out;
  }

  it("connects every process to PostgreSQL under its own login, from its kind's own Secret, never the owner's", () => {
    const seen = new Set<string>();
    for (const p of processLogins()) {
      seen.add(p.kind);
      for (const v of ['POSTGRES_USER', 'POSTGRES_PASSWORD']) expect(secretOf(p.container, v)?.name, `${p.pod}: ${v}`).toBe(LOGIN_SECRETS[p.kind]);
      for (const url of p.urls) {
        const u = new URL(url);
        expect(decodeURIComponent(u.username), `${p.pod}: ${placeOf(url)}`).toBe(p.env.POSTGRES_USER);
        expect(decodeURIComponent(u.password), `${p.pod}: ${placeOf(url)}`).toBe(p.env.POSTGRES_PASSWORD);
      }
    }
    expect([...seen].sort()).toEqual(['pm-worker', 'rebalancer', 'router', 'shard']);
    // The owner's credentials reach one of our pods only: the migration Job's (PostgreSQL itself has them too).
    for (const r of resources) {
      for (const c of (containersOf(r) as Obj[]).filter((x) => IMAGE.test(String(x.image)))) {
        const owner = (c.env as Obj[] | undefined)?.some((e) => e.valueFrom?.secretKeyRef?.name === 'postgres-credentials') ?? false;
        expect(owner, `${resourceId(r)} container ${c.name} has the owner's credentials`).toBe(r.kind === 'Job' && r.metadata.name === 'migrate' && c.name === 'migrate');
      }
    }
    // In the dev overlay the logins' Secrets are there: four different users, none the owner.
    if (target.includes('dev')) {
      const users = Object.values(LOGIN_SECRETS).map((n) => find(resources, 'Secret', n).stringData.username);
      expect(new Set(users).size).toBe(4);
      expect(users).not.toContain(find(resources, 'Secret', 'postgres-credentials').stringData.username);
    }
  });

  it('migrates as the owner in a Job that makes each login, and every process waits for it under its own login before it starts', () => {
    const job = find(resources, 'Job', 'migrate');
    const container = job.spec.template.spec.containers[0];
    expect(IMAGE.test(container.image)).toBe(true);
    expect(container.args).toEqual(['migrate']);
    const resolved = resolveEnv(container, { name: 'migrate-x2x7q', namespace: NAMESPACE }, resources);
    for (const name of Object.keys(resolved.values)) {
      if (!MIGRATE_ENV.includes(name)) expect(resolved.referenced.has(name), `${name} is neither read by cli/migrate.ts nor used in another variable`).toBe(true);
    }
    const env = resolved.values;
    const ownerUrls = [...env.STORE_DATABASE_URLS!.split(','), env.RING_DATABASE_URL!];
    for (const url of ownerUrls) expect(decodeURIComponent(new URL(url).username)).toBe(env.POSTGRES_USER);
    expect(secretOf(container, 'POSTGRES_USER')?.name).toBe('postgres-credentials');
    // It migrates exactly the stores and the ring the processes use, where they reach them (TLS options included).
    const logins = processLogins();
    const shardStores = new Set(logins.filter((p) => p.kind === 'shard').map((p) => placeOf(p.urls[0]!)));
    expect(new Set(env.STORE_DATABASE_URLS!.split(',').map(placeOf))).toEqual(shardStores);
    for (const p of logins) expect(placeOf(p.urls.at(-1)!), `${p.pod}'s ring`).toBe(placeOf(env.RING_DATABASE_URL!));
    expect(env.RING_BOOTSTRAP).toBe(podEnv(resources, ourContainers(resources).find((c) => c.role === 'router')!.container, 'router', 'router').env.RING_BOOTSTRAP);
    // It creates each kind's login from the Secret that kind connects with.
    for (const [kind, secret] of Object.entries(LOGIN_SECRETS)) {
      const k = MIGRATE_KIND[kind as keyof typeof MIGRATE_KIND];
      expect(secretOf(container, `MIGRATE_${k}_USER`)).toEqual({ name: secret, key: 'username' });
      expect(secretOf(container, `MIGRATE_${k}_PASSWORD`)).toEqual({ name: secret, key: 'password' });
    }
    // Its own wait is for every PostgreSQL it migrates.
    const jobWait = resolveEnv(job.spec.template.spec.initContainers[0], { name: 'migrate-x2x7q', namespace: NAMESPACE }, resources).values;
    expect(new Set(jobWait.DATABASE_HOSTS!.split(' '))).toEqual(new Set(ownerUrls.map((u) => new URL(u).hostname)));
    // Every server process first waits, under its own login, until what it uses is migrated.
    for (const p of logins.filter((l) => l.kind !== 'rebalancer')) {
      const inits = p.workload.spec.template.spec.initContainers as Obj[];
      const wait = inits.find((c) => c.name === 'wait-for-migrations');
      expect(wait, `${p.pod} waits for the migration`).toBeDefined();
      expect(IMAGE.test(wait!.image)).toBe(true);
      expect(wait!.args).toEqual(p.kind === 'router' ? ['migrate', '--wait', '--groups'] : ['migrate', '--wait']);
      const waitEnv = resolveEnv(wait!, { name: p.pod, namespace: NAMESPACE }, resources).values;
      expect(waitEnv.RING_DATABASE_URL, `${p.pod}: the same ring, the same login`).toBe(p.urls.at(-1));
      if (p.kind === 'shard') expect(waitEnv.DATABASE_URL).toBe(p.urls[0]);
      else expect(waitEnv.DATABASE_URL).toBeUndefined();
      // A CA file its URLs name is mounted in the init container too.
      const ca = /sslrootcert=([^&]+)/.exec(waitEnv.RING_DATABASE_URL!)?.[1];
      if (ca) expect((wait!.volumeMounts as Obj[]).some((m) => decodeURIComponent(ca).startsWith(`${m.mountPath}/`))).toBe(true);
    }
  });

  it("runs `ring add|remove` in a rebalancer pod with the rebalancer's login to the ring and to every store, and its certificate", () => {
    const workload = find(resources, 'Deployment', 'rebalancer');
    expect(workload.spec.replicas, 'idle until someone rebalances').toBe(0);
    const container = workload.spec.template.spec.containers[0];
    const env = resolveEnv(container, { name: 'rebalancer-x', namespace: NAMESPACE }, resources).values;
    expect(Object.keys(env).sort()).toEqual([
      'POSTGRES_PASSWORD',
      'POSTGRES_USER',
      'RING_DATABASE_URL',
      'SHARD_DATABASE_PASSWORD_FILE',
      'SHARD_DATABASE_USER',
      'TLS_CA_FILE',
      'TLS_CERT_FILE',
      'TLS_KEY_FILE',
    ]);
    expect(secretOf(container, 'SHARD_DATABASE_USER')).toEqual({ name: LOGIN_SECRETS.rebalancer, key: 'username' });
    const mounts = container.volumeMounts as Obj[];
    const volumes = workload.spec.template.spec.volumes as Obj[];
    const fileFrom = (path: string) => {
      const m = mounts.find((x) => path.startsWith(`${x.mountPath}/`))!;
      return { volume: volumes.find((v) => v.name === m.name)!, file: path.slice(m.mountPath.length + 1) };
    };
    const pw = fileFrom(env.SHARD_DATABASE_PASSWORD_FILE!);
    expect(pw.volume.secret.secretName).toBe(LOGIN_SECRETS.rebalancer);
    expect(pw.volume.secret.items).toEqual([{ key: 'password', path: pw.file }]);
    const cert = fileFrom(env.TLS_CERT_FILE!);
    expect(cert.volume.secret.secretName).toBe(find(resources, 'Certificate', 'rebalancer').spec.secretName);
    // It reaches the stores at the URLs the shards register, so their CA files are where theirs are.
    const shardCa = logins().flatMap((u) => [...u.matchAll(/sslrootcert=([^&]+)/g)].map((m) => decodeURIComponent(m[1]!)));
    for (const ca of shardCa)
      expect(
        mounts.some((m) => ca.startsWith(`${m.mountPath}/`)),
        ca,
      ).toBe(true);
    function logins(): string[] {
      return processLogins()
        .filter((p) => p.kind === 'shard')
        .flatMap((p) => p.urls);
    }
  });

  it('reaches Redis only over TLS (rediss://), as an ACL user whose password is a Secret, verifying a cert-manager certificate of the cluster CA', () => {
    const shard = ourContainers(resources).find((c) => c.role === 'shard')!;
    const { settings, env } = podEnv(resources, shard.container, 'shard', 'shard-0');
    const url = new URL(settings.redisUrl!);
    expect(url.protocol).toBe('rediss:');
    expect(decodeURIComponent(url.username)).toBe('shardwrite');
    expect(secretOf(shard.container, 'REDIS_PASSWORD')).toEqual({ name: 'redis-credentials', key: 'password' });
    expect(decodeURIComponent(url.password)).toBe(env.REDIS_PASSWORD);
    expect(env.REDIS_CA_FILE).toBe(env.TLS_CA_FILE);
    // The Redis behind that name serves TLS only, with the Certificate `redis` of the shards' issuer.
    const svc = find(resources, 'Service', url.hostname);
    const redis = workloadsSelectedBy(resources, svc.spec.selector)[0]!;
    const c = redis.spec.template.spec.containers[0];
    const script = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
    expect(script).toMatch(/--port 0 /);
    expect(script).toMatch(new RegExp(`--tls-port ${svc.spec.ports[0].targetPort === 'redis' ? c.ports[0].containerPort : svc.spec.ports[0].targetPort} `));
    expect(script).toContain('user default off');
    expect(script).toContain('user shardwrite on #');
    expect(secretOf(c, 'REDIS_PASSWORD')).toEqual({ name: 'redis-credentials', key: 'password' });
    const certFile = /--tls-cert-file (\S+)/.exec(script)![1]!;
    const mount = (c.volumeMounts as Obj[]).find((m) => certFile.startsWith(`${m.mountPath}/`))!;
    const volume = (redis.spec.template.spec.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const certificate = find(resources, 'Certificate', 'redis');
    expect(volume.secret.secretName).toBe(certificate.spec.secretName);
    expect(certificate.spec.dnsNames).toContain(url.hostname);
    expect(certificate.spec.issuerRef).toEqual(find(resources, 'Certificate', 'shard').spec.issuerRef);
    expect(JSON.stringify(c.readinessProbe.exec.command)).toContain('--tls');
    if (target.includes('dev')) expect(find(resources, 'Secret', 'redis-credentials').stringData.password).toBeTruthy();
  });
});

describe.skipIf(NO_KUBECTL)('k8s/ as a whole', () => {
  it('has no manifest that no kustomization uses', () => {
    const used = new Set<string>();
    const visit = (dir: string) => {
      const [k] = loadYamlDocuments(join(dir, 'kustomization.yaml'));
      used.add(join(dir, 'kustomization.yaml'));
      for (const entry of [...((k!.resources as string[]) ?? []), ...((k!.components as string[]) ?? [])]) {
        const path = resolve(dir, entry);
        if (existsSync(join(path, 'kustomization.yaml'))) visit(path);
        else used.add(path);
      }
      for (const g of (k!.configMapGenerator as { files: string[] }[]) ?? []) for (const f of g.files) used.add(resolve(dir, f));
    };
    for (const t of TARGETS) visit(join(K8S, t));
    const all: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else all.push(join(dir, e.name));
      }
    };
    walk(K8S);
    expect(all.filter((f) => !used.has(f)).map((f) => relative(ROOT, f))).toEqual([]);
  });

  it("runs the package's own version of the image in the base, which overlays retag", () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const { container } of ourContainers(rendered.get('base')!)) expect(container.image).toBe(`shardwrite:${version}`);
    for (const t of TARGETS.filter((t) => t !== 'base')) {
      const images = new Set(ourContainers(rendered.get(t)!).map((c) => String(c.container.image)));
      expect(images.size, `${t}: routers and shards run one image`).toBe(1);
    }
  });

  it('keeps one PostgreSQL per shard in the base, each with its own volume that scaling down never deletes', () => {
    const base = rendered.get('base')!;
    const shard = find(base, 'StatefulSet', 'shard');
    const pg = find(base, 'StatefulSet', 'postgres-shard');
    expect(pg.spec.replicas).toBe(shard.spec.replicas);
    expect(pg.spec.podManagementPolicy).toBe('Parallel');
    expect(pg.spec.volumeClaimTemplates.map((v: Obj) => v.metadata.name)).toEqual(['data']);
    expect(pg.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    const c = pg.spec.template.spec.containers[0];
    expect(c.volumeMounts.find((m: Obj) => m.name === 'data').mountPath).toBe('/var/lib/postgresql/data');
    expect(c.env.find((e: Obj) => e.name === 'PGDATA').value).toMatch(/^\/var\/lib\/postgresql\/data\/.+/);
    const initdb = c.volumeMounts.find((m: Obj) => m.mountPath === '/docker-entrypoint-initdb.d');
    const volume = pg.spec.template.spec.volumes.find((v: Obj) => v.name === initdb.name);
    expect(find(base, 'ConfigMap', volume.configMap.name).data).toHaveProperty(['10-ring-database.sh']);
    // SIGTERM would be PostgreSQL's smart shutdown, waiting on the shards' pools: stop it fast instead.
    expect(c.lifecycle.preStop.exec.command.join(' ')).toMatch(/pg_ctl stop --mode=fast/);
  });

  it('creates the ring database on the PostgreSQL of ordinal 0 only', () => {
    const script = String(find(rendered.get('base')!, 'ConfigMap', 'postgres-initdb').data['10-ring-database.sh']);
    const dir = mkdtempSync(join(tmpdir(), 'sw-initdb-'));
    try {
      // psql stands in: it records its arguments.
      writeFileSync(join(dir, 'psql'), '#!/bin/sh\nprintf "%s\\n" "$@" >> "$PSQL_LOG"\n');
      chmodSync(join(dir, 'psql'), 0o755);
      writeFileSync(join(dir, 'init.sh'), script);
      const run = (hostname: string) => {
        const log = join(dir, `${hostname}.log`);
        const r = spawnSync('sh', [join(dir, 'init.sh')], {
          env: { PATH: `${dir}:${process.env.PATH}`, HOSTNAME: hostname, POSTGRES_USER: 'shardwrite', POSTGRES_DB: 'shardwrite', PSQL_LOG: log },
          encoding: 'utf8',
        });
        expect(r.status).toBe(0);
        return existsSync(log) ? execFileSync('cat', [log], { encoding: 'utf8' }) : '';
      };
      expect(run('postgres-shard-0')).toContain('CREATE DATABASE shardwrite_ring');
      expect(run('postgres-0')).toContain('CREATE DATABASE shardwrite_ring');
      expect(run('postgres-shard-1')).toBe('');
      expect(run('postgres-shard-10')).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("alerts on the design article's thresholds, using only metrics and labels the code exports", () => {
    const registry = new Registry();
    new PipelineMetrics(registry);
    new RouterMetrics(registry);
    const metrics = new Map(
      registry.getMetricsAsArray().map((m) => [m.name, { type: (m as unknown as { type?: string }).type ?? m.constructor.name, labels: (m as unknown as { labelNames: string[] }).labelNames }]),
    );
    const production = rendered.get('overlays/production')!;
    const rules = byKind(production, 'PrometheusRule').flatMap((r) => r.spec.groups.flatMap((g: Obj) => g.rules)) as Obj[];
    expect(rules.length).toBeGreaterThanOrEqual(3);
    for (const rule of rules) {
      const expr = String(rule.expr);
      const used = [...expr.matchAll(/\bshardwrite_[a-z0-9_]+/g)].map((m) => m[0]);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      const labels = new Set(['namespace', 'pod', 'job', 'instance']);
      for (const name of used) {
        const base = metrics.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
        const metric = metrics.get(base);
        expect(metric, `${rule.alert}: ${name} is exported`).toBeDefined();
        if (base !== name) {
          expect(String(metric!.type).toLowerCase(), `${name} is a histogram series`).toContain('histogram');
          labels.add('le');
        }
        for (const l of metric!.labels) labels.add(l);
      }
      for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
        for (const l of m[1]!.split(',').map((s) => s.trim())) expect(labels.has(l), `${rule.alert}: label ${l}`).toBe(true);
      }
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(rule.labels.severity).toMatch(/^(warning|critical)$/);
    }
    const alert = (metric: string) => rules.find((r) => String(r.expr).includes(metric))!;
    expect(String(alert('shardwrite_stage_duration_seconds_bucket').expr)).toMatch(/histogram_quantile\(0\.95,[\s\S]*\bstage\b[\s\S]*\)\s*>\s*0\.1\s*$/);
    expect(String(alert('shardwrite_conflicts_total').expr)).toMatch(/shardwrite_conflicts_total[\s\S]*\/[\s\S]*shardwrite_commands_total[\s\S]*>\s*0\.01\b/);
    expect(String(alert('shardwrite_load_replayed_events_bucket').expr)).toMatch(/histogram_quantile\(0\.95,[\s\S]*\)\s*>\s*500\s*$/);
    // Event store lag: the worst report of any router, per consumer group.
    expect(String(alert('shardwrite_router_consumer_group_lag_seconds').expr)).toMatch(/max by \(namespace, group\)[\s\S]*>\s*60\s*$/);
  });

  it('documents deploying and adding a shard in the README with names that exist in the manifests', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('## Deploy');
    const deploy = readme.slice(readme.indexOf('## Deploy'));
    expect(deploy).toContain('docker compose up');
    for (const t of TARGETS.filter((t) => t.startsWith('overlays/'))) expect(deploy).toContain(`kubectl apply -k k8s/${t}`);
    expect(deploy).toContain('CloudNativePG');
    // Every object a command names exists (pods: a StatefulSet's ordinals, up to the one being added).
    const base = rendered.get('base')!;
    const kinds: Record<string, string> = { statefulset: 'StatefulSet', deploy: 'Deployment', deployment: 'Deployment', service: 'Service' };
    const refs = [...deploy.matchAll(/(?<=[\s`])(statefulset|deploy|deployment|service|pod)\/([a-z0-9-]+)/g)];
    expect(refs.length).toBeGreaterThan(5);
    for (const [, kind, name] of refs) {
      if (kind === 'pod') expect(find(base, 'StatefulSet', name!.replace(/-\d+$/, '')), name).toBeDefined();
      else expect(find(base, kinds[kind!]!, name!), `${kind}/${name}`).toBeDefined();
    }
    // Adding a shard: scale both StatefulSets, then put the new pod on the ring at its stable name.
    const shard = find(base, 'StatefulSet', 'shard');
    const next = shard.spec.replicas as number;
    const port = find(base, 'Service', shard.spec.serviceName).spec.ports.find((p: Obj) => p.name === 'grpc').port;
    expect(deploy).toContain(`kubectl -n ${NAMESPACE} scale statefulset/postgres-shard --replicas=${next + 1}`);
    expect(deploy).toContain(`kubectl -n ${NAMESPACE} scale statefulset/shard --replicas=${next + 1}`);
    expect(deploy).toContain(`ring add shard-${next} --address shard-${next}.${shard.spec.serviceName}:${port}`);
    expect(deploy.indexOf('scale statefulset/postgres-shard')).toBeLessThan(deploy.indexOf('scale statefulset/shard '));
    expect(deploy.indexOf('scale statefulset/shard ')).toBeLessThan(deploy.indexOf(`ring add shard-${next}`));
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Registry } from 'prom-client';
import { PipelineMetrics } from '../../src/observability/metrics.js';
import { RouterMetrics } from '../../router/metrics.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder } from '../support/grpc.js';
import { freePort } from '../support/postgres-process.js';
import { KUBECTL_AVAILABLE, renderKustomization } from '../deploy/support/kustomize.js';
import { parseExposition, type Exposition } from '../../cli/metrics-text.js';
import { promqlUses } from '../support/promql.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const MONITORING = join(ROOT, 'k8s/components/monitoring');
/** Labels Prometheus adds when it scrapes (the ServiceMonitors' targets), not the processes. */
const TARGET_LABELS = new Set(['namespace', 'pod', 'job', 'instance', 'service', 'container', 'endpoint']);
/**
 * Labelled series this run does not make appear (a conflict retry, a
 * WRONG_SHARD resend, a consumer group): their label names are checked
 * against the code's registries instead. Kept exact, so the list cannot grow
 * unnoticed.
 */
const NOT_EXERCISED = [
  'shardwrite_conflict_retries_total',
  'shardwrite_router_wrong_shard_retries_total',
  'shardwrite_router_consumer_group_lag_events',
  'shardwrite_router_consumer_group_lag_seconds',
];

interface Query {
  readonly where: string;
  readonly expr: string;
  /** `{{label}}`s of the panel's legend. */
  readonly legend: readonly string[];
}

function dashboardQueries(): Query[] {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, 'dashboards/shardwrite.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[];
    templating: { list: { name: string; query?: string | { query: string } }[] };
  };
  const out: Query[] = [];
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr, legend: [...(t.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!) });
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q && q.includes('shardwrite_')) out.push({ where: `variable $${v.name}`, expr: q, legend: [] });
  }
  return out;
}

function alertQueries(): Query[] {
  const docs = parseAllDocuments(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')).map((d) => d.toJS() as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } });
  return docs.flatMap((d) => d.spec.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr, legend: [] }))));
}

let cluster: Cluster;
const metricsAddresses: string[] = [];

beforeAll(async () => {
  const [shardPort, routerPort] = [await freePort(), await freePort()];
  metricsAddresses.push(`127.0.0.1:${shardPort}`, `127.0.0.1:${routerPort}`);
  cluster = await startCluster({ shards: 1, shardEnv: { METRICS_ADDRESS: metricsAddresses[0]! }, routerEnv: { METRICS_ADDRESS: metricsAddresses[1]! } });
  // Traffic that makes the labelled series appear: commands through the router (a new stream, then
  // ones loaded from the owner cache), a refused one, and after a restart a load from PostgreSQL and one
  // from the owner cache again (the restarted shard's counters start at zero).
  const line = (i: number) => ({ orderId: 'cov-1', lineId: `l${i}`, sku: 'SKU', quantity: 1, unitPriceCents: '100' });
  let clients = connect(cluster.routerAddress);
  await clients.call('PlaceOrder', placeOrder('cov-1'));
  await clients.attempt('PlaceOrder', placeOrder('cov-1'));
  for (let i = 0; i < 3; i++) await clients.call('AddOrderLine', line(i));
  clients.close();
  await cluster.shards[0]!.restart();
  clients = connect(cluster.routerAddress);
  // The router reconnects to the restarted shard: retry (the same line is a duplicate once applied).
  for (let tries = 0; !('ok' in (await clients.attempt('AddOrderLine', { ...line(3), commandId: 'cov-reload' }))); tries++) {
    if (tries > 80) throw new Error('the restarted shard did not answer');
    await new Promise((r) => setTimeout(r, 250));
  }
  await clients.call('AddOrderLine', line(4));
  clients.close();
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

async function scrape(): Promise<Exposition> {
  const texts = await Promise.all(metricsAddresses.map(async (a) => (await fetch(`http://${a}/metrics`)).text()));
  return parseExposition(texts.join('\n'));
}

describe('the dashboard and the alert rules', () => {
  it('query only metrics, labels and label values that the running router and shard export on /metrics', async () => {
    const exposed = await scrape();
    const registry = new Registry();
    new PipelineMetrics(registry);
    new RouterMetrics(registry);
    const declared = new Map(registry.getMetricsAsArray().map((m) => [m.name, new Set((m as unknown as { labelNames: string[] }).labelNames)]));
    const queries = [...dashboardQueries(), ...alertQueries()];
    expect(queries.length).toBeGreaterThan(30);
    const unexercised = new Set<string>();
    for (const q of queries) {
      const uses = promqlUses(q.expr);
      expect(uses.metrics.length, `${q.where} queries a shardwrite metric`).toBeGreaterThan(0);
      const available = new Set(TARGET_LABELS);
      for (const name of uses.metrics) {
        const metric = exposed.get(name);
        expect(metric, `${q.where}: ${name} is on /metrics`).toBeDefined();
        for (const l of metric!.labels) available.add(l);
        if (metric!.samples === 0) {
          // Declared (# TYPE) but no series yet: the labels the code gives it.
          unexercised.add(metric!.family);
          for (const l of declared.get(metric!.family) ?? []) available.add(l);
          if (name.endsWith('_bucket')) available.add('le');
        }
      }
      for (const label of [...uses.labels, ...q.legend]) expect(available.has(label), `${q.where}: label ${label} is on its metrics`).toBe(true);
      for (const { metric, label, value } of uses.equalities) {
        const m = exposed.get(metric)!;
        if (TARGET_LABELS.has(label) || m.samples === 0) continue;
        expect([...(m.values.get(label) ?? [])], `${q.where}: ${metric}{${label}="${value}"} has series`).toContain(value);
      }
    }
    expect([...unexercised].sort()).toEqual([...NOT_EXERCISED].sort());
  });

  it('are packaged for the Grafana sidecar and the Prometheus Operator by the monitoring component', () => {
    if (!KUBECTL_AVAILABLE) {
      expect(process.env.CI, 'kubectl is required in CI').not.toBe('true');
      return;
    }
    const rendered = renderKustomization(join(ROOT, 'k8s/overlays/production'));
    const configMap = rendered.find((r) => r.kind === 'ConfigMap' && r.metadata.name === 'shardwrite-dashboard') as unknown as
      { metadata: { labels: Record<string, string> }; data: Record<string, string> } | undefined;
    expect(configMap?.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(configMap!.data['shardwrite.json']!)).toEqual(JSON.parse(readFileSync(join(MONITORING, 'dashboards/shardwrite.json'), 'utf8')));
    expect(rendered.some((r) => r.kind === 'PrometheusRule')).toBe(true);
  });
});

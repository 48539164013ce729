import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { PipelineMetrics, serveMetricsAt } from '../../src/observability/metrics.js';
import { RouterMetrics } from '../../router/metrics.js';
import { parseExposition } from '../../cli/metrics-text.js';
import { frameOf, plainLines, quantile, screen, topCommand, topTargets, type Scrape } from '../../cli/top.js';

const targets = [
  { name: 'shard-0', address: 'a' },
  { name: 'router', address: 'b' },
  { name: 'shard-1', address: 'c' },
];

async function scrapeOf(at: number, shard: Registry, router: Registry): Promise<Scrape> {
  return {
    at,
    byTarget: new Map([
      ['shard-0', parseExposition(await shard.metrics())],
      ['router', parseExposition(await router.metrics())],
      ['shard-1', undefined],
    ]),
  };
}

describe('shardwrite top', () => {
  it("computes one interval's per-shard rates, ratios, breakers and stage percentiles from two scrapes of /metrics", async () => {
    const shardRegistry = new Registry();
    const shard = new PipelineMetrics(shardRegistry);
    const routerRegistry = new Registry();
    const router = new RouterMetrics(routerRegistry);
    shard.commands.inc({ method: 'PlaceOrder', code: 'OK' }, 1000);
    shard.stageSeconds.observe({ stage: 'append', outcome: 'ok' }, 5);
    const before = await scrapeOf(0, shardRegistry, routerRegistry);

    shard.commands.inc({ method: 'PlaceOrder', code: 'OK' }, 100);
    shard.commands.inc({ method: 'PlaceOrder', code: 'ABORTED' }, 10);
    shard.conflicts.inc(11);
    shard.retries.inc({ outcome: 'succeeded' });
    for (let i = 0; i < 90; i++) shard.stageSeconds.observe({ stage: 'append', outcome: 'ok' }, 0.002);
    for (let i = 0; i < 10; i++) shard.stageSeconds.observe({ stage: 'append', outcome: 'error' }, 0.2);
    for (let i = 0; i < 10; i++) shard.batchEntries.observe(12);
    shard.loads.inc({ tier: 'memory' }, 80);
    shard.loads.inc({ tier: 'replay' }, 20);
    shard.inFlight.set(5);
    shard.storeBreakerOpen.set(1);
    router.requests.inc({ method: 'm', code: 'OK', shard: 'shard-0' }, 300);
    router.breakerState.set({ shard: 'shard-0' }, 2);
    router.ringEpoch.set(3);
    const after = await scrapeOf(2000, shardRegistry, routerRegistry);

    const frame = frameOf(before, after, targets);
    expect(frame.down).toEqual(['shard-1']);
    const [row] = frame.shards;
    expect(row).toMatchObject({
      name: 'shard-0',
      commandsPerSecond: 55,
      refusedPerSecond: 5,
      inFlight: 5,
      conflictRate: 0.1,
      retriesPerSecond: 0.5,
      batchEntries: 12,
      cacheHitRate: 0.8,
      storeBreaker: 'OPEN',
      redisBreaker: '-',
    });
    // Only this interval's observations: the 5 s one before it is not in them.
    const [p50, p95, p99] = row!.stages.append!;
    expect(p50).toBeGreaterThan(0.001);
    expect(p50).toBeLessThanOrEqual(0.0025);
    expect(p95).toBeGreaterThan(0.1);
    expect(p99).toBeLessThanOrEqual(0.25);
    expect(row!.stages.decide).toBeUndefined();
    expect(frame.routers).toEqual([{ name: 'router', callsPerSecond: 150, epoch: 3, breakers: { 'shard-0': 'OPEN' } }]);
  });

  it('interpolates quantiles like histogram_quantile', () => {
    const buckets: [number, number][] = [
      [0.1, 50],
      [0.2, 100],
      [Infinity, 100],
    ];
    expect(quantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(quantile(0.75, buckets)).toBeCloseTo(0.15);
    expect(quantile(0.25, buckets)).toBeCloseTo(0.05);
    expect(
      quantile(0.99, [
        [0.1, 1],
        [Infinity, 100],
      ]),
    ).toBe(0.1);
  });

  it('prints plain key=value lines when piped and a table on a terminal', async () => {
    const registry = new Registry();
    const shard = new PipelineMetrics(registry);
    const before = { at: 0, byTarget: new Map([['shard-0', parseExposition(await registry.metrics())]]) };
    shard.commands.inc({ method: 'PlaceOrder', code: 'OK' }, 7);
    const after = { at: 1000, byTarget: new Map([['shard-0', parseExposition(await registry.metrics())]]) };
    const frame = frameOf(before, after, [{ name: 'shard-0', address: 'x' }]);
    const at = new Date('2026-01-01T00:00:00Z');
    expect(plainLines(frame, at)).toEqual([
      '2026-01-01T00:00:00.000Z shard=shard-0 cmd_per_s=7.0 refused_per_s=0.0 in_flight=0 conflict_rate=0.0000 retries_per_s=0.0 batch_entries=- ' +
        'cache_hit_rate=- store_breaker=closed redis_breaker=- queue_ms=- load_ms=- decide_ms=- append_ms=- total_ms=-',
    ]);
    const text = screen(frame, at, 1000).join('\n');
    expect(text).toMatch(/shard\s+cmd\/s/);
    expect(text).toMatch(/shard-0\s+7\s/);
  });

  it('reads running processes and prints a frame per interval, piped', async () => {
    const registry = new Registry();
    const shard = new PipelineMetrics(registry);
    const served = await serveMetricsAt(registry, '127.0.0.1:0');
    const timer = setInterval(() => shard.commands.inc({ method: 'PlaceOrder', code: 'OK' }), 5);
    try {
      const lines: string[] = [];
      const code = await topCommand(
        ['--metrics', served.address, '--interval', '200', '--count', '2'],
        {},
        { line: (t) => lines.push(t), error: (t) => lines.push(t), tty: false },
        new AbortController().signal,
      );
      expect(code).toBe(0);
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toMatch(new RegExp(`shard=${served.address.replace(/\./g, '\\.')} cmd_per_s=(\\d+\\.\\d) `));
      expect(Number(/cmd_per_s=([\d.]+)/.exec(lines[1]!)![1])).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
      served.server.close();
    }
  });

  it('finds the router and shards npm start recorded, and refuses to run without any', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-top-'));
    try {
      const file = join(dir, 'cluster.json');
      writeFileSync(file, JSON.stringify({ router: { metrics: '127.0.0.1:9465' }, shards: [{ id: 'shard-0', metrics: '127.0.0.1:9466' }], spares: [{ id: 'shard-3', metrics: '127.0.0.1:9469' }] }));
      expect(topTargets(undefined, {}, file)).toEqual([
        { name: 'router', address: '127.0.0.1:9465' },
        { name: 'shard-0', address: '127.0.0.1:9466' },
        { name: 'shard-3', address: '127.0.0.1:9469' },
      ]);
      expect(topTargets(undefined, { SHARDWRITE_METRICS: 'h:1, h:2' }, file).map((t) => t.address)).toEqual(['h:1', 'h:2']);
      expect(topTargets(undefined, {}, join(dir, 'missing.json'))).toEqual([]);
      const errors: string[] = [];
      const code = await topCommand(['--metrics', ''], {}, { line: () => {}, error: (t) => errors.push(t), tty: false }, new AbortController().signal);
      expect(code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

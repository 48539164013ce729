/**
 * `shardwrite top`: a live view of a running cluster, read from its
 * processes' Prometheus `/metrics` once a second. Per shard: commands/s and
 * refusals/s, commands in flight, conflict rate and conflict retries/s,
 * mean group-commit batch entries, owner-cache hit rate, the store and Redis
 * breakers, and p50/p95/p99 of each pipeline stage over the last interval;
 * per router: calls/s, ring epoch and its breaker per shard. On a terminal
 * the screen is redrawn; piped, each interval prints plain `key=value` lines.
 */
import { readFileSync } from 'node:fs';
import { parseExposition, type ExposedMetric, type Exposition, type Series } from './metrics-text.js';
import type { Output } from './ring.js';
import { CLUSTER_FILE } from './ring.js';

export const TOP_USAGE = `  top [--metrics HOST:PORT,…] [--interval MS] [--count N]
                        live per-shard view from the processes' /metrics (default: the router's and
                        shards' of .data/cluster.json, or SHARDWRITE_METRICS); redrawn each interval
                        on a terminal, plain key=value lines when piped; --count stops after N frames`;

/** How often `top` scrapes and redraws. @default 1000 */
export const DEFAULT_TOP_INTERVAL_MS = 1000;

/** Stages shown, in pipeline order (validate, authorize and ownership take microseconds). */
const STAGES = ['queue', 'load', 'decide', 'append', 'total'] as const;

/** One process's /metrics. */
export interface TopTarget {
  readonly name: string;
  readonly address: string;
}

/** A scrape: each target's exposition (undefined when it did not answer), and when. */
export interface Scrape {
  readonly at: number;
  readonly byTarget: ReadonlyMap<string, Exposition | undefined>;
}

/** What `top` shows of a shard over one interval. */
export interface ShardRow {
  readonly name: string;
  readonly commandsPerSecond: number;
  readonly refusedPerSecond: number;
  readonly inFlight: number;
  /** Conflicts per command handled (0..1). */
  readonly conflictRate: number;
  readonly retriesPerSecond: number;
  /** Mean entries per group-commit batch (undefined: no batch). */
  readonly batchEntries: number | undefined;
  /** Loads served by the owner cache, of all loads (undefined: no load). */
  readonly cacheHitRate: number | undefined;
  readonly storeBreaker: string;
  readonly redisBreaker: string;
  /** Seconds, per stage: [p50, p95, p99] (undefined: nothing timed). */
  readonly stages: Readonly<Record<string, readonly [number, number, number] | undefined>>;
}

export interface RouterRow {
  readonly name: string;
  readonly callsPerSecond: number;
  readonly epoch: number;
  readonly breakers: Readonly<Record<string, string>>;
}

export interface Frame {
  readonly shards: ShardRow[];
  readonly routers: RouterRow[];
  /** Targets that did not answer. */
  readonly down: string[];
}

const BREAKER_STATES = ['closed', 'half-open', 'OPEN'];

const sum = (series: readonly Series[] | undefined, match: (l: Readonly<Record<string, string>>) => boolean = () => true): number =>
  (series ?? []).reduce((n, s) => (match(s.labels) ? n + s.value : n), 0);

const values = (m: Exposition, name: string) => m.get(name)?.series;

/** The rows of one interval, from two scrapes of the same targets. */
export function frameOf(before: Scrape, after: Scrape, targets: readonly TopTarget[]): Frame {
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  const frame: Frame = { shards: [], routers: [], down: [] };
  for (const t of targets) {
    const a = after.byTarget.get(t.name);
    const b = before.byTarget.get(t.name);
    if (!a) {
      frame.down.push(t.name);
      continue;
    }
    // A process that restarted between the scrapes starts its counters again: rates from zero.
    const prev: Exposition = b ?? new Map<string, ExposedMetric>();
    const delta = (name: string, match?: (l: Readonly<Record<string, string>>) => boolean) => {
      const d = sum(values(a, name), match) - sum(values(prev, name), match);
      return d >= 0 ? d : sum(values(a, name), match);
    };
    if (a.has('shardwrite_stage_duration_seconds_bucket')) {
      const commands = delta('shardwrite_commands_total');
      const loads = delta('shardwrite_loads_total');
      const batches = delta('shardwrite_group_commit_batch_entries_count');
      const stages: Record<string, readonly [number, number, number] | undefined> = {};
      for (const stage of STAGES) {
        const buckets = bucketDeltas(values(a, 'shardwrite_stage_duration_seconds_bucket'), values(prev, 'shardwrite_stage_duration_seconds_bucket'), (l) => l.stage === stage);
        stages[stage] = buckets ? [quantile(0.5, buckets), quantile(0.95, buckets), quantile(0.99, buckets)] : undefined;
      }
      frame.shards.push({
        name: t.name,
        commandsPerSecond: commands / seconds,
        refusedPerSecond: delta('shardwrite_commands_total', (l) => l.code !== 'OK') / seconds,
        inFlight: sum(values(a, 'shardwrite_commands_in_flight')),
        conflictRate: commands > 0 ? delta('shardwrite_conflicts_total') / commands : 0,
        retriesPerSecond: delta('shardwrite_conflict_retries_total') / seconds,
        batchEntries: batches > 0 ? delta('shardwrite_group_commit_batch_entries_sum') / batches : undefined,
        cacheHitRate: loads > 0 ? delta('shardwrite_loads_total', (l) => l.tier === 'memory') / loads : undefined,
        storeBreaker: sum(values(a, 'shardwrite_store_breaker_open')) >= 1 ? 'OPEN' : 'closed',
        // Without Redis the cache counts no operation: '-'.
        redisBreaker: (a.get('shardwrite_snapshot_cache_ops_total')?.samples ?? 0) > 0 ? (BREAKER_STATES[sum(values(a, 'shardwrite_snapshot_cache_breaker_state'))] ?? '?') : '-',
        stages,
      });
    } else if (a.has('shardwrite_router_requests_total')) {
      const breakers: Record<string, string> = {};
      for (const s of values(a, 'shardwrite_router_breaker_state') ?? []) breakers[s.labels.shard ?? '?'] = BREAKER_STATES[s.value] ?? '?';
      frame.routers.push({
        name: t.name,
        callsPerSecond: delta('shardwrite_router_requests_total') / seconds,
        epoch: sum(values(a, 'shardwrite_router_ring_epoch')),
        breakers,
      });
    }
  }
  return frame;
}

/** Cumulative bucket counts gained between two scrapes, by upper bound, ascending; undefined when nothing was observed. */
function bucketDeltas(now: readonly Series[] | undefined, then: readonly Series[] | undefined, match: (l: Readonly<Record<string, string>>) => boolean): [number, number][] | undefined {
  const byLe = new Map<number, number>();
  const add = (series: readonly Series[] | undefined, sign: number) => {
    for (const s of series ?? []) {
      if (!match(s.labels) || s.labels.le === undefined) continue;
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + sign * s.value);
    }
  };
  add(now, 1);
  add(then, -1);
  const buckets = [...byLe.entries()].sort((x, y) => x[0] - y[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  return total > 0 ? buckets : undefined;
}

/** `histogram_quantile` over cumulative buckets: linear within the bucket the rank falls in. */
export function quantile(q: number, buckets: readonly [number, number][]): number {
  const total = buckets.at(-1)![1];
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      return count === below ? le : lower + ((le - lower) * (rank - below)) / (count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

const ms = (s: number | undefined) => (s === undefined ? '-' : s < 0.001 ? (s * 1000).toFixed(2) : s < 0.1 ? (s * 1000).toFixed(1) : (s * 1000).toFixed(0));
const pct = (r: number | undefined) => (r === undefined ? '-' : `${(r * 100).toFixed(r < 0.1 ? 2 : 1)}%`);
const num = (n: number | undefined, digits = 0) => (n === undefined ? '-' : n.toFixed(digits));

/** A frame as plain `key=value` lines (piped output): one per shard, one per router. */
export function plainLines(frame: Frame, at: Date): string[] {
  const time = at.toISOString();
  const lines = frame.shards.map(
    (s) =>
      `${time} shard=${s.name} cmd_per_s=${num(s.commandsPerSecond, 1)} refused_per_s=${num(s.refusedPerSecond, 1)} in_flight=${s.inFlight} ` +
      `conflict_rate=${num(s.conflictRate, 4)} retries_per_s=${num(s.retriesPerSecond, 1)} batch_entries=${num(s.batchEntries, 1)} ` +
      `cache_hit_rate=${num(s.cacheHitRate, 3)} store_breaker=${s.storeBreaker} redis_breaker=${s.redisBreaker} ` +
      STAGES.map((st) => `${st}_ms=${s.stages[st]?.map((v) => ms(v)).join('/') ?? '-'}`).join(' '),
  );
  for (const r of frame.routers) {
    lines.push(
      `${time} router=${r.name} calls_per_s=${num(r.callsPerSecond, 1)} epoch=${r.epoch} ${Object.entries(r.breakers)
        .map(([k, v]) => `breaker_${k}=${v}`)
        .join(' ')}`.trimEnd(),
    );
  }
  for (const d of frame.down) lines.push(`${time} down=${d}`);
  return lines;
}

/** A frame as a screen (terminal output). */
export function screen(frame: Frame, at: Date, intervalMs: number): string[] {
  const pad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
  const left = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
  const out = [`shardwrite top — ${at.toISOString().slice(11, 19)} — every ${intervalMs / 1000} s, Ctrl-C quits`, ''];
  out.push(left('shard', 10) + ['cmd/s', 'refused/s', 'in flight', 'conflicts', 'retries/s', 'batch', 'cache hit', 'store', 'redis'].map((h) => pad(h, 10)).join(''));
  for (const s of frame.shards) {
    out.push(
      left(s.name, 10) +
        [
          num(s.commandsPerSecond),
          num(s.refusedPerSecond, 1),
          String(s.inFlight),
          pct(s.conflictRate),
          num(s.retriesPerSecond, 1),
          num(s.batchEntries, 1),
          pct(s.cacheHitRate),
          s.storeBreaker,
          s.redisBreaker,
        ]
          .map((v) => pad(v, 10))
          .join(''),
    );
  }
  out.push('', left('ms p50/p95/p99', 16) + STAGES.map((st) => pad(st, 18)).join(''));
  for (const s of frame.shards) out.push(left(s.name, 16) + STAGES.map((st) => pad(s.stages[st]?.map((v) => ms(v)).join('/') ?? '-', 18)).join(''));
  for (const r of frame.routers) {
    out.push(
      '',
      `router ${r.name}: ${num(r.callsPerSecond)} calls/s, ring epoch ${r.epoch}; breakers ${
        Object.entries(r.breakers)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '-'
      }`,
    );
  }
  if (frame.down.length > 0) out.push('', `not answering: ${frame.down.join(', ')}`);
  return out;
}

/** The processes to read: `--metrics`, SHARDWRITE_METRICS, or the router and shards of `.data/cluster.json`. */
export function topTargets(flag: string | undefined, env: NodeJS.ProcessEnv, clusterFile = CLUSTER_FILE): TopTarget[] {
  const list = flag ?? (env.SHARDWRITE_METRICS || undefined);
  if (list !== undefined)
    return list
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean)
      .map((address) => ({ name: address, address }));
  let parsed: { router?: { metrics?: unknown }; shards?: { id?: unknown; metrics?: unknown }[]; spares?: { id?: unknown; metrics?: unknown }[] };
  try {
    parsed = JSON.parse(readFileSync(clusterFile, 'utf8')) as typeof parsed;
  } catch {
    return [];
  }
  const out: TopTarget[] = [];
  if (typeof parsed.router?.metrics === 'string') out.push({ name: 'router', address: parsed.router.metrics });
  for (const s of [...(parsed.shards ?? []), ...(parsed.spares ?? [])]) {
    if (typeof s.metrics === 'string') out.push({ name: typeof s.id === 'string' ? s.id : s.metrics, address: s.metrics });
  }
  return out;
}

/** Fetches and parses one process's /metrics; undefined when it does not answer in time. */
async function scrapeOne(address: string, timeoutMs: number): Promise<Exposition | undefined> {
  try {
    const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? parseExposition(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}

export async function scrape(targets: readonly TopTarget[], timeoutMs: number): Promise<Scrape> {
  const results = await Promise.all(targets.map(async (t) => [t.name, await scrapeOne(t.address, timeoutMs)] as const));
  return { at: Date.now(), byTarget: new Map(results) };
}

/** Runs `top` until `signal` aborts (or `--count` frames); returns the exit code. */
export async function topCommand(args: string[], env: NodeJS.ProcessEnv, out: Output, signal: AbortSignal): Promise<number> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const intervalMs = Number(flag('--interval') ?? DEFAULT_TOP_INTERVAL_MS);
  const count = flag('--count') === undefined ? Infinity : Number(flag('--count'));
  if (!Number.isFinite(intervalMs) || intervalMs < 100 || !(count >= 1)) {
    out.error(`usage:\n${TOP_USAGE}`);
    return 2;
  }
  const targets = topTargets(flag('--metrics'), env);
  if (targets.length === 0) {
    out.error(`no processes to read: pass --metrics HOST:PORT,… or SHARDWRITE_METRICS, or run \`npm start\` (which writes ${CLUSTER_FILE})`);
    return 2;
  }
  const wait = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  let before = await scrape(targets, intervalMs * 0.8);
  for (let frames = 0; frames < count && !signal.aborted;) {
    await wait();
    if (signal.aborted) break;
    const after = await scrape(targets, intervalMs * 0.8);
    const frame = frameOf(before, after, targets);
    before = after;
    frames++;
    const at = new Date(after.at);
    if (out.tty) out.line(`\x1b[H\x1b[2J${screen(frame, at, intervalMs).join('\n')}`);
    else for (const line of plainLines(frame, at)) out.line(line);
  }
  return 0;
}

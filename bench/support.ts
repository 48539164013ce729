/**
 * Shared pieces of the benchmarks: a PostgreSQL server (DATABASE_URL, or an
 * embedded one), throw-away databases, a closed-loop load generator and
 * latency percentiles. Benchmarks print figures; they never pass or fail.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js';

let embeddedStop: (() => Promise<void>) | undefined;

export async function serverUrl(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const pgServer = await startEmbeddedPostgres({ dataDir: '.data/bench-postgres', port: 54339 });
  embeddedStop = () => pgServer.stop();
  // The benchmarks that start a cluster create its databases with test/support/pg.ts, which reads
  // DATABASE_URL (in tests, global-setup sets it the same way).
  process.env.DATABASE_URL = pgServer.url;
  return pgServer.url;
}

export async function stopServer(): Promise<void> {
  await embeddedStop?.();
}

/** Creates an empty database on the server and returns its URL and a dropper. */
export async function benchDatabase(server: string, prefix = 'sw_bench'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface LoadResult {
  readonly label: string;
  readonly ok: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Free-form extra columns. */
  readonly extra: Record<string, string | number>;
}

/** Told when a closed loop starts measuring (after its warm-up) and when it stops. */
interface MeasureWindow {
  begin(): void;
  end(): void;
}
let measureWindow: MeasureWindow | undefined;

/**
 * Runs `op` in `concurrency` closed loops for `durationMs` (after a warm-up)
 * and reports throughput and latency percentiles in milliseconds.
 */
export async function closedLoop(
  label: string,
  concurrency: number,
  durationMs: number,
  op: (worker: number, i: number) => Promise<unknown>,
  warmupMs = Math.min(1000, durationMs / 5),
): Promise<LoadResult> {
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let measuring = false;
  const warmEnd = Date.now() + warmupMs;
  const end = warmEnd + durationMs;
  let firstError: unknown;
  const worker = async (w: number) => {
    for (let i = 0; Date.now() < end; i++) {
      const t0 = performance.now();
      try {
        await op(w, i);
        if (measuring) {
          latencies.push(performance.now() - t0);
          ok++;
        }
      } catch (err) {
        firstError ??= err;
        if (measuring) errors++;
      }
    }
  };
  const started = Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  measureWindow?.begin();
  const t0 = performance.now();
  await started;
  const seconds = (performance.now() - t0) / 1000;
  measureWindow?.end();
  if (errors > 0) console.warn(`  [${label}] ${errors} errors, first: ${String((firstError as Error)?.message ?? firstError)}`);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return { label, ok, errors, seconds, perSecond: ok / seconds, p50: pct(50), p95: pct(95), p99: pct(99), extra: {} };
}

/** Prints results as an aligned table. */
export function printTable(rows: readonly LoadResult[]): void {
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extra)))];
  const header = ['case', 'ok/s', 'p50 ms', 'p95 ms', 'p99 ms', 'ok', 'errors', ...extraKeys];
  const body = rows.map((r) => [
    r.label,
    r.perSecond.toFixed(0),
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    String(r.ok),
    String(r.errors),
    ...extraKeys.map((k) => String(r.extra[k] ?? '')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const b of body) console.log(line(b));
}

/** Committed transactions of one database so far (pg_stat_database; flushes stats first). */
export async function committedTransactions(client: pg.ClientBase, database: string): Promise<number> {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1', [database]);
  return Number(rows[0]?.n ?? 0);
}

/** The positive number given after `name` in `args` (`--rounds 3`), else `fallback`. */
export function numberArg<T extends number | undefined>(args: readonly string[], name: string, fallback: T): number | T {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export function durationFromArgs(args: string[], fallbackMs: number): number {
  return numberArg(args, '--seconds', fallbackMs / 1000) * 1000;
}

/** CPU seconds (user + system) a process has used so far, from /proc; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of every PostgreSQL process on this machine, including the
 * backends that exited: a postmaster's reaped children are in its cutime and
 * cstime, so a backend that ends inside a measured window moves its CPU from
 * one term to the other instead of vanishing from the sum (which once made
 * PostgreSQL's share of a window negative).
 */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/comm`, 'utf8').startsWith('postgres')) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/**
 * Runs `work` (one closed loop) and reports the CPU each named process (and
 * PostgreSQL) spent per successful command, in µs, over the loop's measured
 * window only (its warm-up left out): where the time goes.
 */
export async function cpuPerCommand(processes: Record<string, number>, work: () => Promise<LoadResult>): Promise<{ result: LoadResult; perCommandUs: Record<string, number> }> {
  const names = Object.keys(processes);
  const sample = () => [...names.map((n) => cpuSeconds(processes[n]!)), postgresCpuSeconds()];
  let before: number[] = [];
  let after: number[] = [];
  measureWindow = { begin: () => (before = sample()), end: () => (after = sample()) };
  let result: LoadResult;
  try {
    result = await work();
  } finally {
    measureWindow = undefined;
  }
  const perCommandUs: Record<string, number> = {};
  [...names, 'postgres'].forEach((n, i) => (perCommandUs[n] = Math.round(((after[i]! - before[i]!) / result.ok) * 1e6)));
  return { result, perCommandUs };
}

/**
 * Runs `work` and reports the mean group-commit batch size (entries per batch)
 * of the shards whose `/metrics` listen at `metrics` (`host:port` each), over
 * the whole of `work` (its warm-up included): the histogram
 * `shardwrite_group_commit_batch_entries` read before and after.
 */
export async function batchSize<T>(metrics: readonly string[], work: () => Promise<T>): Promise<{ result: T; entriesPerBatch: number }> {
  const read = async () => {
    let sum = 0;
    let count = 0;
    for (const address of metrics) {
      const text = await (await fetch(`http://${address}/metrics`)).text();
      sum += Number(/^shardwrite_group_commit_batch_entries_sum(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0);
      count += Number(/^shardwrite_group_commit_batch_entries_count(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0);
    }
    return { sum, count };
  };
  const before = await read();
  const result = await work();
  const after = await read();
  return { result, entriesPerBatch: (after.sum - before.sum) / Math.max(1, after.count - before.count) };
}

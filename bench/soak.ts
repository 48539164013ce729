/**
 * `npm run bench -- soak [--minutes N] [--callers N] [--think-ms N]`: a long
 * run at a steady ledger load (test/support/ledger.ts) through a router and
 * three shards, while the cluster is operated on: a fourth shard is added and
 * removed in turn every few minutes (every N/6 minutes, at least one), the
 * cluster's Redis (a private redis-server on a port of its own) is restarted
 * once, and shard-0's PostgreSQL (a server of its own) is crashed with
 * SIGKILL and restarted once. Prints, every minute, the commands acknowledged
 * and their p99, the error answers, and for every process its resident memory
 * and open file descriptors (sockets among them), PostgreSQL connections and
 * Redis clients — the figures a leak or an unbounded queue would show; at the
 * end, the ledger proved against every store (lost, duplicated, violations).
 * Measures; never passes or fails.
 *
 * Default 30 minutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Rebalancer, formatDuration } from '../src/rebalance/index.js';
import { checkStores } from '../test/support/checker.js';
import { startCluster, type Cluster } from '../test/support/cluster.js';
import { startLoad, summaryLine, type Ledger } from '../test/support/ledger.js';
import { freePort, startOwnPostgres, type OwnPostgres } from '../test/support/postgres-process.js';
import { numberArg } from './support.js';

/** Answers the scenario causes: a moving stream's, and an outage's (Redis fails open; shard-0's store is down for a while). */
const EXPECTED = ['UNAVAILABLE/STREAM_MOVING', 'FAILED_PRECONDITION/WRONG_SHARD', 'UNAVAILABLE/STORE_UNAVAILABLE', 'DEADLINE_EXCEEDED'];

interface Proc {
  readonly name: string;
  readonly pid: () => number | undefined;
}

/** Resident memory (MiB), open descriptors and sockets of `pid`; undefined once it is gone. */
function usage(pid: number | undefined): { rssMiB: number; fds: number; sockets: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    let fds = 0;
    let sockets = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        // Closed while we looked.
      }
    }
    return { rssMiB: rssKiB / 1024, fds, sockets };
  } catch {
    return undefined;
  }
}

/** A redis-server of the bench's own, restartable on its port. */
async function startRedis(): Promise<{ url: string; pid: () => number | undefined; restart(downMs: number): Promise<void>; stop(): Promise<void> }> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on('error', () => {});
    for (const until = Date.now() + 10_000; Date.now() < until;) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch {
        await sleep(50);
      }
    }
    probe.disconnect();
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: () => (child && child.exitCode === null ? child.pid : undefined),
    async restart(downMs) {
      await stop();
      await sleep(downMs);
      await start();
    },
    stop,
  };
}

/** p99 (ms) of the answers in `[from, to)`, every attempt counted. */
function windowFigures(ledger: Ledger, from: number, to: number): { acked: number; p99: number | undefined; errors: Record<string, number> } {
  const ms: number[] = [];
  const errors: Record<string, number> = {};
  let acked = 0;
  for (const c of ledger.commands.values()) {
    for (const a of c.attempts) {
      const at = a.sentAt + a.ms;
      if (at < from || at >= to) continue;
      ms.push(a.ms);
      if (a.code === 'OK') acked++;
      else {
        const key = a.reason ? `${a.code}/${a.reason}` : a.code;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  }
  ms.sort((a, b) => a - b);
  return { acked, p99: ms.length > 0 ? ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))] : undefined, errors };
}

export async function run(_server: string, args: string[]): Promise<void> {
  const minutes = numberArg(args, '--minutes', 30);
  const callers = numberArg(args, '--callers', 16);
  const thinkMs = numberArg(args, '--think-ms', 10);
  const totalMs = minutes * 60_000;
  const cycleMs = Math.max(60_000, Math.round(totalMs / 6 / 60_000) * 60_000);
  const redisAt = Math.round(totalMs * 0.45);
  const postgresAt = Math.round(totalMs * 0.7);
  console.log(
    `soak: ${minutes} min, ${callers} callers (think ${thinkMs} ms); shard-3 added/removed every ${formatDuration(cycleMs)}, ` +
      `Redis restarted at ${formatDuration(redisAt)}, shard-0's PostgreSQL crashed and restarted at ${formatDuration(postgresAt)}`,
  );

  const redis = await startRedis();
  let own: OwnPostgres | undefined;
  let cluster: Cluster | undefined;
  let monitorPg: pg.Client | undefined;
  const redisMonitor = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => 200, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redisMonitor.on('error', () => {});
  try {
    own = await startOwnPostgres();
    const ownUrl = own.url;
    cluster = await startCluster({ shards: 3, spares: 1, databaseUrl: (i) => (i === 0 ? ownUrl : undefined), shardEnv: { REDIS_URL: redis.url } });
    const c = cluster;
    const databases = c
      .stores()
      .map((s) => new URL(s.url).pathname.slice(1))
      .concat(new URL(c.ringUrl).pathname.slice(1));
    monitorPg = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await monitorPg.connect();
    await redisMonitor.connect().catch(() => {});

    const procs: Proc[] = [
      { name: 'router', pid: () => c.router.pid },
      ...c.shards.map((s) => ({ name: s.id, pid: () => s.process.pid })),
      { name: 'redis', pid: redis.pid },
      { name: 'bench', pid: () => process.pid },
    ];
    const run = startLoad({ target: c.routerAddress, prefix: `soak-${Date.now().toString(36)}`, clients: callers, ordersPerClient: 8, thinkMs, deadlineMs: 3000, expect: EXPECTED });
    const started = Date.now();
    const events: string[] = [];
    const note = (text: string) => {
      const line = `  [${formatDuration(Date.now() - started)}] ${text}`;
      events.push(line);
      console.log(line);
    };

    // Operations, in the background: moves every cycle, one Redis restart, one PostgreSQL crash.
    let stopOps = false;
    const ops = (async () => {
      let nextMove = cycleMs;
      let redisDone = false;
      let pgDone = false;
      while (!stopOps) {
        const t = Date.now() - started;
        if (!redisDone && t >= redisAt) {
          redisDone = true;
          note('Redis: stopping it for 3 s');
          await redis.restart(3000);
          note('Redis: back');
        } else if (!pgDone && t >= postgresAt) {
          pgDone = true;
          note("shard-0's PostgreSQL: SIGKILL");
          await own.crash();
          await sleep(3000);
          await own.restart();
          note("shard-0's PostgreSQL: restarted (crash recovery done)");
        } else if (t >= nextMove && t < totalMs - 30_000) {
          nextMove += cycleMs;
          const ring = (await c.ringStore.current())!;
          const onRing = ring.shards.some((s) => s.id === 'shard-3');
          const request = onRing ? ({ kind: 'remove', shardId: 'shard-3' } as const) : ({ kind: 'add', shardId: 'shard-3', address: c.shard('shard-3').address } as const);
          const t0 = Date.now();
          try {
            // The ring database keeps store URLs without passwords: the rebalancer brings its own login
            // (shard-0's own PostgreSQL wants one; the shared server trusts it either way).
            const r = await new Rebalancer({ ringDatabaseUrl: c.ringUrl, storeCredentials: { password: decodeURIComponent(new URL(ownUrl).password) } }).run(request);
            note(`ring ${request.kind} shard-3: epoch ${r.epoch}, ${r.figures.streamsTotal} streams moved in ${formatDuration(Date.now() - t0)}${r.resumed ? ' (resumed)' : ''}`);
          } catch (err) {
            note(`ring ${request.kind} shard-3 failed after ${formatDuration(Date.now() - t0)} (resumed next cycle): ${err instanceof Error ? err.message : String(err)}`);
            nextMove = Date.now() - started + 15_000;
          }
        }
        await sleep(500);
      }
    })();

    console.log(`  ${'min'.padStart(3)} ${'acked'.padStart(6)} ${'p99 ms'.padStart(7)}  ${procs.map((p) => `${p.name} MiB/fds/sock`).join('  ')}  pg-conns main/own  redis-clients  errors`);
    for (let minute = 1; minute <= minutes; minute++) {
      await sleep(started + minute * 60_000 - Date.now());
      const f = windowFigures(run.ledger, started + (minute - 1) * 60_000, started + minute * 60_000);
      const cols = procs.map((p) => {
        const u = usage(p.pid());
        return (u ? `${u.rssMiB.toFixed(0)}/${u.fds}/${u.sockets}` : 'down').padStart(p.name.length + 13);
      });
      const mainConns = await monitorPg.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1)', [databases]).then(
        (r) => String(r.rows[0]?.n),
        () => '?',
      );
      const ownConns = await ownConnections(own.url);
      const clients = await redisMonitor.info('clients').then(
        (text) => /connected_clients:(\d+)/.exec(text)?.[1] ?? '?',
        () => 'down',
      );
      const errorText =
        Object.entries(f.errors)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || '-';
      console.log(
        `  ${String(minute).padStart(3)} ${String(f.acked).padStart(6)} ${(f.p99 === undefined ? '-' : String(f.p99)).padStart(7)}  ${cols.join('  ')}  ${`${mainConns}/${ownConns}`.padStart(17)}  ${clients.padStart(13)}  ${errorText}`,
      );
    }
    stopOps = true;
    await ops;
    const ledger = await run.stop();
    const check = await checkStores(c.stores(), ledger);
    console.log(summaryLine(`soak ${minutes} min`, ledger, check, { events: events.length }));
    if (check.violations.length > 0) for (const v of check.violations.slice(0, 10)) console.log(`  violation: ${v}`);
    const dead = c.dead();
    console.log(dead.length === 0 ? '  every process ran to the end' : `  processes that died: ${dead.join('\n')}`);
  } finally {
    redisMonitor.disconnect();
    await monitorPg?.end().catch(() => {});
    await cluster?.close();
    await own?.stop().catch(() => {});
    await redis.stop();
  }
}

/** Connections to the own PostgreSQL server's database, or `down` while it is. */
async function ownConnections(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    // This monitoring connection excluded.
    const r = await client.query<{ n: number }>('SELECT count(*)::int - 1 AS n FROM pg_stat_activity WHERE datname = current_database()');
    return String(r.rows[0]?.n);
  } catch {
    return 'down';
  } finally {
    await client.end().catch(() => {});
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

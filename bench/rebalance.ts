/**
 * `npm run bench -- rebalance [--seconds N] [--streams N] [--callers N]`: a
 * cluster of a router and three shard processes holding 100,000 streams
 * (seeded straight into their stores with SQL), a fourth shard running
 * beside it, and closed-loop callers sending UpdateShippingAddress to random
 * orders through the router before, during and after `ring add` puts the
 * fourth shard on the ring. Prints throughput and latency for each phase,
 * and the move's duration and streams/s. Measures; never passes or fails.
 *
 * Each caller's command is retried with its command id on a retryable answer
 * (a moving stream's UNAVAILABLE, WRONG_SHARD, ABORTED, RESOURCE_EXHAUSTED),
 * as a real client does; its latency is the whole of it, retries included.
 */
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { RingView, PgRingStore, type RingDocument } from '../src/ring/index.js';
import { Rebalancer, formatCount, formatDuration, type MoveProgress } from '../src/rebalance/index.js';
import { migrate } from '../src/store/index.js';
import { connect, type Clients } from '../test/support/grpc.js';
import { freePort } from '../test/support/postgres-process.js';
import { startProcess, type ServiceProcess } from '../test/support/processes.js';
import { benchDatabase, durationFromArgs, printTable, type LoadResult } from './support.js';
import { SEED_SQL } from '../test/rebalance/support/stores.js';

const CHANNELS = 4;
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.ABORTED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.DEADLINE_EXCEEDED]);

interface Sample {
  readonly end: number;
  readonly ms: number;
  readonly ok: boolean;
  readonly retries: number;
}

function numberArg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

export async function run(server: string, args: string[]): Promise<void> {
  const phaseMs = durationFromArgs(args, 5000);
  const streams = numberArg(args, '--streams', 100_000);
  const callers = numberArg(args, '--callers', 64);
  const databases = await Promise.all(['sw_bench_ring', 'sw_bench_s0', 'sw_bench_s1', 'sw_bench_s2', 'sw_bench_s3'].map((p) => benchDatabase(server, p)));
  const [ringDb, ...shardDbs] = databases as [(typeof databases)[0], ...typeof databases];
  const processes: ServiceProcess[] = [];
  const clients: Clients[] = [];
  const ringStore = new PgRingStore({ connectionString: ringDb.url });
  try {
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    const addresses = ports.slice(0, 4).map((p) => `127.0.0.1:${p}`);
    const ring1: RingDocument = { epoch: 1, shards: addresses.slice(0, 3).map((address, k) => ({ id: `shard-${k}`, address })) };

    console.log(`rebalance: seeding ${formatCount(streams)} streams over 3 shards …`);
    const seedStarted = performance.now();
    await ringStore.migrate();
    await ringStore.initIfEmpty(ring1);
    await Promise.all(shardDbs.map((db) => migrate(db.url)));
    const view = new RingView(ring1);
    const byShard: string[][] = [[], [], []];
    for (let n = 0; n < streams; n++) byShard[Number(view.ownerOf(`o${n}`).id.slice(6))]!.push(`o${n}`);
    await Promise.all(
      byShard.map(async (ids, k) => {
        const c = new pg.Client({ connectionString: shardDbs[k]!.url });
        await c.connect();
        try {
          for (let i = 0; i < ids.length; i += 20_000) await c.query(SEED_SQL, [ids.slice(i, i + 20_000)]);
          await c.query('ANALYZE');
        } finally {
          await c.end();
        }
      }),
    );
    console.log(`  seeded in ${formatDuration(performance.now() - seedStarted)}; starting a router and 4 shard processes (shard-3 not on the ring) …`);

    const shardEnv = (k: number) => ({
      SHARD_ID: `shard-${k}`,
      GRPC_ADDRESS: addresses[k]!,
      DATABASE_URL: shardDbs[k]!.url,
      RING_DATABASE_URL: ringDb.url,
      LOG_LEVEL: 'error',
    });
    processes.push(...(await Promise.all([0, 1, 2, 3].map((k) => startProcess('shard/main.ts', shardEnv(k))))));
    const routerAddress = `127.0.0.1:${ports[4]}`;
    processes.push(await startProcess('router/main.ts', { GRPC_ADDRESS: routerAddress, RING_DATABASE_URL: ringDb.url, LOG_LEVEL: 'error' }));
    clients.push(...Array.from({ length: CHANNELS }, () => connect(routerAddress)));

    // Closed loop until `stop`, recording every command's end, latency and retries.
    const samples: Sample[] = [];
    let stopping = false;
    let sequence = 0;
    const worker = async (w: number) => {
      const client = clients[w % CHANNELS]!;
      while (!stopping) {
        const n = sequence++;
        const orderId = `o${Math.floor(Math.random() * streams)}`;
        const request = {
          orderId,
          commandId: `bench-${w}-${n}`,
          shippingAddress: { name: `Caller ${w}`, line1: `${n} Loop Lane`, city: 'Berlin', postalCode: '10115', country: 'DE' },
        };
        const started = performance.now();
        let retries = 0;
        let ok = false;
        for (;;) {
          const out = await client.attempt('UpdateShippingAddress', request, { deadlineMs: 5000 });
          if ('ok' in out) {
            ok = true;
            break;
          }
          const retryable = RETRYABLE.has(out.error.code) || out.error.reason === 'WRONG_SHARD';
          if (!retryable || retries >= 20) break;
          retries++;
          await new Promise((r) => setTimeout(r, Math.min(out.error.retryAfterMs ?? 50, 500) * Math.random() + 10));
        }
        const end = performance.now();
        samples.push({ end, ms: end - started, ok, retries });
      }
    };
    const load = Promise.all(Array.from({ length: callers }, (_, w) => worker(w)));

    // Warm up (channels, caches, plans), then measure.
    await new Promise((r) => setTimeout(r, 2000));
    const beforeFrom = performance.now();
    await new Promise((r) => setTimeout(r, phaseMs));
    const moveFrom = performance.now();
    let lastLine = 0;
    const rebalancer = new Rebalancer({
      ringDatabaseUrl: ringDb.url,
      onProgress: (p: MoveProgress) => {
        if (performance.now() - lastLine < 1000 && p.phase !== 'done') return;
        lastLine = performance.now();
        console.log(`  ${p.phase}: ${formatCount(p.figures.streamsCopied)}/${formatCount(p.figures.streamsTotal)} streams copied, ${formatCount(p.figures.eventsCopied)} events`);
      },
    });
    console.log(`  ${callers} callers running; ring add shard-3 …`);
    const result = await rebalancer.run({ kind: 'add', shardId: 'shard-3', address: addresses[3]! });
    const moveTo = performance.now();
    await new Promise((r) => setTimeout(r, phaseMs));
    const afterTo = performance.now();
    stopping = true;
    await load;

    const phase = (label: string, from: number, to: number): LoadResult => {
      const inside = samples.filter((s) => s.end >= from && s.end < to);
      const oks = inside
        .filter((s) => s.ok)
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      const pct = (p: number) => oks[Math.min(oks.length - 1, Math.floor((p / 100) * oks.length))] ?? NaN;
      const seconds = (to - from) / 1000;
      return {
        label,
        ok: oks.length,
        errors: inside.length - oks.length,
        seconds,
        perSecond: oks.length / seconds,
        p50: pct(50),
        p95: pct(95),
        p99: pct(99),
        extra: { retried: inside.filter((s) => s.retries > 0).length, 'max ms': Math.round(oks[oks.length - 1] ?? 0) },
      };
    };
    console.log('');
    printTable([phase('before (3 shards)', beforeFrom, moveFrom), phase('during ring add', moveFrom, moveTo), phase('after (4 shards)', moveTo, afterTo)]);
    const f = result.figures;
    const seconds = result.durationMs / 1000;
    console.log(
      `\nmove: ${formatCount(f.streamsTotal)} of ${formatCount(f.streamsSeen)} streams (${((100 * f.streamsTotal) / f.streamsSeen).toFixed(1)}%) ` +
        `to shard-3, ${formatCount(f.eventsCopied)} events copied, in ${formatDuration(result.durationMs)} ` +
        `= ${formatCount(f.streamsTotal / seconds)} streams/s (${formatCount(f.eventsCopied / seconds)} events/s)`,
    );
    const phases = Object.entries(f.phaseMs).map(([k, v]) => `${k} ${formatDuration(v ?? 0)}`);
    const sealed = (f.phaseMs.seal ?? 0) + (f.phaseMs.delta ?? 0) + (f.phaseMs.publish ?? 0);
    console.log(`phases: ${phases.join(', ')}; moving streams were sealed (seal + delta + publish) for ${formatDuration(sealed)}`);
  } finally {
    for (const c of clients) c.close();
    await Promise.all(processes.map((p) => p.stop()));
    await ringStore.close();
    for (const db of databases) await db.drop();
  }
}

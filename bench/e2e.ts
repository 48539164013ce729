/**
 * `npm run bench -- e2e [--seconds N] [--rounds R] [--shards S]`: commands/s and latency, in one run:
 *  (a) unary through the router to S shards (default 3), 64 callers;
 *  (b) unary straight to one shard;
 *  (c) unary through a do-nothing grpc-js pass-through router to a do-nothing backend
 *      answering replies the size of a real one (the most unary gRPC carries here);
 *  (d) raw group commit on the same PostgreSQL, without gRPC: 64 callers, and
 *      1024 (the ceiling);
 *  (e) streaming (CommandStreamService) through the router to the S shards: 64
 *      commands in flight over 4 streams (as the issue's load generator), and 1024;
 *  (f) an in-process event store library on the same PostgreSQL, without
 *      shardwrite: Emmett's (see library.ts), 64 callers each appending an
 *      OrderPlaced to a new stream per call, on a database of its own;
 *  (g) streaming straight to the owner shards with the ring-aware client
 *      (`createClient(router, { ringAware: true })`): 64 in flight over 4
 *      clients, each with one stream per shard, no router hop;
 * and the ratios a/c, a/d, e/d, e/f, g/e, g/d; CPU per command by process and, for the
 * streaming cases, the shards' mean group-commit batch size. Every command is a PlaceOrder of a new
 * order (an append each). All load comes from this process; every process is
 * started and warmed up before the first case. The machine's speed drifts
 * over a run, so the cases run in R rounds (default 3: a, c, e, g, d, f, e', d'
 * each round) and ratios compare the totals of the rounds.
 * `npm run bench -- library` runs (f) alone.
 */
import { startCluster } from '../test/support/cluster.js';
import { startProcess } from '../test/support/processes.js';
import { connect, placeOrder, type Clients } from '../test/support/grpc.js';
import { createClient } from '../src/client/index.js';
import { GroupCommitWriter, migrate } from '../src/store/index.js';
import { emmettStore, libraryAppends } from './library.js';
import { freePort } from '../test/support/postgres-process.js';
import { batchSize, benchDatabase, closedLoop, cpuPerCommand, durationFromArgs, numberArg, printTable, type LoadResult } from './support.js';

const CALLERS = 64;
const CHANNELS = 4;
/** In flight for the ceiling cases (d', e'). */
const CEILING = 1024;

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

/** PlaceOrder of a fresh order per call: every command appends. */
function unary(label: string, prefix: string, clients: Clients[], durationMs: number): Promise<LoadResult> {
  return closedLoop(label, CALLERS, durationMs, async (w, i) => {
    await clients[w % clients.length]!.call('PlaceOrder', placeOrder(`${prefix}-${w}-${i}`, { shippingAddress: address(i) }));
  });
}

/** Commands/s over several runs of one case. */
const perSecond = (runs: readonly LoadResult[]) => runs.reduce((n, r) => n + r.ok, 0) / runs.reduce((s, r) => s + r.seconds, 0);

/** Mean CPU per command by process over several runs. */
function meanCpu(runs: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0] ?? {})) out[k] = Math.round(runs.reduce((s, r) => s + r[k]!, 0) / runs.length);
  return out;
}

export async function run(server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const rounds = numberArg(args, '--rounds', 3);
  const shardCount = numberArg(args, '--shards', 3);
  console.log(
    `e2e: ${shardCount} shards; ${CALLERS} unary callers over ${CHANNELS} channels; streaming: ${CALLERS} and ${CEILING} in flight over 4 streams; ` +
      `${durationMs / 1000}s per case; (a) and (c) alternate for ${rounds} rounds\n`,
  );

  // Each shard's /metrics at a known address, for its group-commit batch sizes.
  const metrics = await Promise.all(Array.from({ length: shardCount }, async () => `127.0.0.1:${await freePort()}`));
  const cluster = await startCluster({ shards: shardCount, shardEnv: (i) => ({ LOG_LEVEL: 'error', METRICS_ADDRESS: metrics[i]! }), routerEnv: { LOG_LEVEL: 'error', STREAM_MAX_IN_FLIGHT: '4096' } });
  const single = await benchDatabase(server);
  const raw = await benchDatabase(server);
  const lib = await benchDatabase(server);
  const stops: (() => Promise<unknown>)[] = [() => cluster.close(), () => single.drop(), () => raw.drop(), () => lib.drop()];
  try {
    const shard = await startProcess('shard/main.ts', { DATABASE_URL: single.url, GRPC_ADDRESS: '127.0.0.1:0', LOG_LEVEL: 'error' });
    stops.unshift(() => shard.stop());
    const backend = await startProcess('bench/passthrough.ts', { ROLE: 'backend' });
    stops.unshift(() => backend.stop());
    const passthrough = await startProcess('bench/passthrough.ts', { ROLE: 'router', BACKEND: backend.address });
    stops.unshift(() => passthrough.stop());
    await migrate(raw.url);
    const writer = new GroupCommitWriter({ connectionString: raw.url, epoch: () => 0 });
    stops.unshift(() => writer.close());
    const library = await emmettStore(lib.url);
    stops.unshift(() => library.close());

    const clusterProcs: Record<string, number> = {
      client: process.pid,
      router: cluster.router.pid,
      ...Object.fromEntries(cluster.shards.map((s) => [s.id, s.process.pid])),
    };
    const passProcs = { client: process.pid, router: passthrough.pid, backend: backend.pid };
    const viaRouter = Array.from({ length: CHANNELS }, () => connect(cluster.router.address));
    const viaPass = Array.from({ length: CHANNELS }, () => connect(passthrough.address));
    const direct = Array.from({ length: CHANNELS }, () => connect(shard.address));

    const versions = new Map<number, number>();
    const rawAppend = async (w: number) => {
      const v = versions.get(w) ?? 0;
      await writer.append({
        streamId: `order-header-raw-${w}`,
        aggregateType: 'order-header',
        aggregateId: `raw-${w}`,
        baseVersion: v,
        events: [{ type: 'OrderPlaced', schemaVersion: 1, data: { customerId: 'c', customerEmail: 'a@b.c', shippingAddress: address(v) }, metadata: {} }],
        commands: [{ eventCount: 1 }],
      });
      versions.set(w, v + 1);
    };
    const streams = Array.from({ length: 4 }, () => createClient(cluster.router.address));
    const ringAware = Array.from({ length: 4 }, () => createClient(cluster.router.address, { ringAware: true }));
    const streaming = (label: string, inFlight: number, ms: number, clients = streams) =>
      closedLoop(label, inFlight, ms, async (w, i) => {
        await clients[w % 4]!.placeOrder({ ...placeOrder(`${label.slice(1, 2)}${inFlight}-${w}-${i}-${Date.now() % 1e6}`), shippingAddress: address(i) });
      });

    // Freshly started processes are still compiling their hot paths: warm every one up first.
    await Promise.all([unary('warm-up', 'wa', viaRouter, 3000), unary('warm-up', 'wc', viaPass, 3000), unary('warm-up', 'wb', direct, 3000)]);
    await streaming('(warm-up)', CEILING, 2000);
    await streaming('(warm-up)', CALLERS, 2000, ringAware);

    const runs = {
      a: [] as LoadResult[],
      c: [] as LoadResult[],
      d: [] as LoadResult[],
      dMax: [] as LoadResult[],
      e: [] as LoadResult[],
      eMax: [] as LoadResult[],
      f: [] as LoadResult[],
      g: [] as LoadResult[],
    };
    const cpuRuns = {
      a: [] as Record<string, number>[],
      c: [] as Record<string, number>[],
      e: [] as Record<string, number>[],
      eMax: [] as Record<string, number>[],
      f: [] as Record<string, number>[],
      g: [] as Record<string, number>[],
    };
    // Mean entries per group-commit batch of the streaming cases, by case.
    const batches: Record<string, number[]> = { e: [], g: [], eMax: [] };
    const batched = async <T>(key: string, work: () => Promise<T>): Promise<T> => {
      const { result, entriesPerBatch } = await batchSize(metrics, work);
      batches[key]!.push(entriesPerBatch);
      return result;
    };
    for (let k = 1; k <= rounds; k++) {
      const ra = await cpuPerCommand(clusterProcs, () => unary(`(a) unary via router, ${shardCount} shards #${k}`, `a${k}`, viaRouter, durationMs));
      const rc = await cpuPerCommand(passProcs, () => unary(`(c) do-nothing grpc-js router #${k}`, `c${k}`, viaPass, durationMs));
      const re = await batched('e', () => cpuPerCommand(clusterProcs, () => streaming(`(e) streaming via router, 64 in flight #${k}`, CALLERS, durationMs)));
      const rg = await batched('g', () => cpuPerCommand(clusterProcs, () => streaming(`(g) streaming direct to shards (ring-aware client), 64 in flight #${k}`, CALLERS, durationMs, ringAware)));
      runs.d.push(await closedLoop(`(d) raw group commit, 64 callers #${k}`, CALLERS, durationMs, rawAppend));
      const rf = await cpuPerCommand({ client: process.pid }, () => libraryAppends(`(f) in-process library (Emmett), 64 callers #${k}`, library, CALLERS, durationMs, `f${k}`));
      const reMax = await batched('eMax', () => cpuPerCommand(clusterProcs, () => streaming(`(e') streaming via router, ${CEILING} in flight #${k}`, CEILING, durationMs)));
      runs.dMax.push(await closedLoop(`(d') raw group commit, ${CEILING} callers #${k}`, CEILING, durationMs, (w) => rawAppend(w + CALLERS)));
      for (const [key, run] of [
        ['a', ra],
        ['c', rc],
        ['e', re],
        ['eMax', reMax],
        ['f', rf],
        ['g', rg],
      ] as const) {
        runs[key].push(run.result);
        cpuRuns[key].push(run.perCommandUs);
      }
    }
    const b = await unary('(b) unary direct, 1 shard', 'b', direct, durationMs);
    // Commands the ring-aware clients sent through the router after all (a shard not connected yet, a refusal): should be none.
    const routed = ringAware.reduce((n, c) => n + (c.routing?.viaRouter ?? 0), 0);
    for (const s of [...streams, ...ringAware, ...viaRouter, ...viaPass, ...direct]) s.close();

    printTable([...runs.a, ...runs.c, b, ...runs.d, ...runs.dMax, ...runs.e, ...runs.g, ...runs.eMax, ...runs.f]);
    const ratio = (x: readonly LoadResult[], y: readonly LoadResult[]) => (perSecond(x) / perSecond(y)).toFixed(2);
    const rounded = (x: readonly LoadResult[], y: readonly LoadResult[]) => x.map((r, i) => (r.perSecond / y[i]!.perSecond).toFixed(2)).join(', ');
    console.log(`\nratios of the totals over ${rounds} rounds (each round's in brackets):`);
    console.log(`a/c   unary via router vs bare gRPC pass-through:              ${ratio(runs.a, runs.c)}  [${rounded(runs.a, runs.c)}]   (target >= 0.8)`);
    console.log(`a/d   unary via router vs raw group commit, 64 callers:        ${ratio(runs.a, runs.d)}  [${rounded(runs.a, runs.d)}]`);
    console.log(`e/d   streaming via router vs raw group commit, 64 in flight:  ${ratio(runs.e, runs.d)}  [${rounded(runs.e, runs.d)}]   (target >= 0.5)`);
    console.log(`e/f   streaming via router vs in-process library (Emmett), 64:  ${ratio(runs.e, runs.f)}  [${rounded(runs.e, runs.f)}]   (target >= 3)`);
    console.log(`e'/d' the same at ${CEILING} in flight (the ceiling):              ${ratio(runs.eMax, runs.dMax)}  [${rounded(runs.eMax, runs.dMax)}]`);
    console.log(`g/e   streaming direct to shards vs via router, 64 in flight:  ${ratio(runs.g, runs.e)}  [${rounded(runs.g, runs.e)}]   (target >= 1.3)`);
    console.log(`g/d   streaming direct to shards vs raw group commit, 64:      ${ratio(runs.g, runs.d)}  [${rounded(runs.g, runs.d)}]`);
    console.log(`      (the ring-aware clients sent ${routed} commands through the router, warm-up included)`);
    console.log('\nwhere the CPU goes (mean µs of CPU per successful command, by process; each shard serves its share):');
    const perBatch = (key: string) => {
      const sizes = batches[key]!;
      return `; ${(sizes.reduce((x, y) => x + y, 0) / sizes.length).toFixed(1)} commands per group-commit batch [${sizes.map((b) => b.toFixed(1)).join(', ')}]`;
    };
    const cpu: [string, Record<string, number>, string][] = [
      ['(a) unary via router', meanCpu(cpuRuns.a), ''],
      ['(c) do-nothing router', meanCpu(cpuRuns.c), ''],
      ['(e) streaming via router, 64 in flight', meanCpu(cpuRuns.e), perBatch('e')],
      ['(g) streaming direct to shards (ring-aware client), 64 in flight', meanCpu(cpuRuns.g), perBatch('g')],
      [`(e') streaming via router, ${CEILING} in flight`, meanCpu(cpuRuns.eMax), perBatch('eMax')],
      ['(f) in-process library (Emmett)', meanCpu(cpuRuns.f), ''],
    ];
    for (const [label, us, batch] of cpu) {
      const total = Object.values(us).reduce((x, y) => x + y, 0);
      console.log(
        `  ${label}: ${Object.entries(us)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}; total ${total} µs → at most ${Math.round(2e6 / total)}/s on 2 cores${batch}`,
      );
    }
  } finally {
    for (const stop of stops) await stop();
  }
}

/**
 * `npm run bench -- e2e [--seconds N]`: commands/s and latency, in one run:
 *  (a) unary through the router to 3 shards, 64 callers;
 *  (b) unary straight to one shard;
 *  (c) unary through a do-nothing grpc-js pass-through router to a do-nothing backend
 *      (the most unary gRPC carries here);
 *  (d) raw group commit on the same PostgreSQL, without gRPC: 64 callers, and
 *      1024 (the ceiling);
 *  (e) streaming (CommandStreamService) through the router to 3 shards: 64
 *      commands in flight over 4 streams (as the issue's load generator), and 1024;
 * and the ratios a/c, a/d, e/d. Every command is a PlaceOrder of a new order
 * (an append each). All load comes from this process.
 */
import { startCluster } from '../test/support/cluster.js';
import { startProcess } from '../test/support/processes.js';
import { connect, placeOrder, type Clients } from '../test/support/grpc.js';
import { createClient } from '../src/client/index.js';
import { GroupCommitWriter, migrate } from '../src/store/index.js';
import { benchDatabase, closedLoop, cpuPerCommand, durationFromArgs, printTable, type LoadResult } from './support.js';

const CALLERS = 64;
const CHANNELS = 4;
/** In flight for the ceiling cases (d', e'). */
const CEILING = 1024;

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

/** PlaceOrder of a fresh order per call: every command appends. */
function unary(label: string, clients: Clients[], durationMs: number): Promise<LoadResult> {
  return closedLoop(label, CALLERS, durationMs, async (w, i) => {
    await clients[w % clients.length]!.call('PlaceOrder', placeOrder(`${label.slice(1, 2)}-${w}-${i}`, { shippingAddress: address(i) }));
  });
}

export async function run(server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  console.log(`e2e: ${CALLERS} unary callers over ${CHANNELS} channels; streaming: ${CALLERS} and ${CEILING} in flight over 4 streams; ${durationMs / 1000}s per case\n`);
  const rows: LoadResult[] = [];
  const cpu: [string, Record<string, number>][] = [];

  const cluster = await startCluster({ shards: 3, shardEnv: { LOG_LEVEL: 'error' }, routerEnv: { LOG_LEVEL: 'error', STREAM_MAX_IN_FLIGHT: '4096' } });
  try {
    const procs: Record<string, number> = {
      client: process.pid,
      router: cluster.router.pid,
      ...Object.fromEntries(cluster.shards.map((s) => [s.id, s.proc.pid])),
    };
    const viaRouter = Array.from({ length: CHANNELS }, () => connect(cluster.router.address));
    const a = await cpuPerCommand(procs, () => unary('(a) unary via router, 3 shards', viaRouter, durationMs));
    rows.push(a.result);
    cpu.push(['(a) unary via router', a.perCommandUs]);
    for (const c of viaRouter) c.close();

    const streams = Array.from({ length: 4 }, () => createClient(cluster.router.address));
    for (const [label, inFlight] of [['(e) streaming via router, 64 in flight', CALLERS], [`(e') streaming via router, ${CEILING} in flight`, CEILING]] as const) {
      const e = await cpuPerCommand(procs, () =>
        closedLoop(label, inFlight, durationMs, async (w, i) => {
          await streams[w % 4]!.placeOrder({ ...(placeOrder(`e${inFlight}-${w}-${i}`) as object), shippingAddress: address(i) } as never);
        }),
      );
      rows.push(e.result);
      cpu.push([label, e.perCommandUs]);
    }
    for (const s of streams) s.close();
  } finally {
    await cluster.stop();
  }

  const single = await benchDatabase(server);
  const shard = await startProcess('shard/main.ts', { DATABASE_URL: single.url, GRPC_ADDRESS: '127.0.0.1:0', LOG_LEVEL: 'error' });
  try {
    const direct = Array.from({ length: CHANNELS }, () => connect(shard.address));
    rows.splice(1, 0, await unary('(b) unary direct, 1 shard', direct, durationMs));
    for (const c of direct) c.close();
  } finally {
    await shard.stop();
    await single.drop();
  }

  const backend = await startProcess('bench/passthrough.ts', { ROLE: 'backend' });
  const passthrough = await startProcess('bench/passthrough.ts', { ROLE: 'router', BACKEND: backend.address });
  try {
    const clients = Array.from({ length: CHANNELS }, () => connect(passthrough.address));
    const c = await cpuPerCommand({ client: process.pid, router: passthrough.pid, backend: backend.pid }, () => unary('(c) do-nothing grpc-js router', clients, durationMs));
    rows.splice(2, 0, c.result);
    cpu.splice(1, 0, ['(c) do-nothing router', c.perCommandUs]);
    for (const c of clients) c.close();
  } finally {
    await passthrough.stop();
    await backend.stop();
  }

  const raw = await benchDatabase(server);
  await migrate(raw.url);
  const writer = new GroupCommitWriter({ connectionString: raw.url, epoch: () => 0 });
  const versions = new Map<number, number>();
  const rawAppend = async (w: number) => {
    const v = versions.get(w) ?? 0;
    await writer.append({
      streamId: `order-header-raw-${w}`,
      aggregateType: 'order-header',
      aggregateId: `raw-${w}`,
      expectedVersion: v,
      events: [{ type: 'OrderPlaced', schemaVersion: 1, data: { customerId: 'c', customerEmail: 'a@b.c', shippingAddress: address(v) }, metadata: {} }],
      commands: [{ eventCount: 1 }],
    });
    versions.set(w, v + 1);
  };
  rows.splice(3, 0, await closedLoop('(d) raw group commit, 64 callers', CALLERS, durationMs, rawAppend));
  rows.splice(4, 0, await closedLoop(`(d') raw group commit, ${CEILING} callers`, CEILING, durationMs, (w) => rawAppend(w + CALLERS)));
  await writer.close();
  await raw.drop();

  printTable(rows);
  const [a, , c, d, dMax, e, eMax] = rows;
  const ratio = (x: LoadResult, y: LoadResult) => (x.perSecond / y.perSecond).toFixed(2);
  console.log(`\na/c   (unary via router vs bare gRPC pass-through):              ${ratio(a!, c!)}   (target >= 0.8)`);
  console.log(`a/d   (unary via router vs raw group commit, 64 callers):       ${ratio(a!, d!)}`);
  console.log(`e/d   (streaming via router vs raw group commit, 64 in flight): ${ratio(e!, d!)}   (target >= 0.5)`);
  console.log(`e'/d' (the same at ${CEILING} in flight, the ceiling):             ${ratio(eMax!, dMax!)}`);
  console.log('\nwhere the CPU goes (µs of CPU per successful command, by process; each shard serves about a third):');
  for (const [label, us] of cpu) {
    const total = Object.values(us).reduce((x, y) => x + y, 0);
    console.log(`  ${label}: ${Object.entries(us).map(([k, v]) => `${k} ${v}`).join(', ')}; total ${total} µs → at most ${Math.round(2e6 / total)}/s on 2 cores`);
  }
}

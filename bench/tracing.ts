/**
 * `npm run bench -- tracing [--seconds N] [--rounds R]`: what tracing costs
 * the streaming path (CommandStreamService through the router to 3 shards,
 * 64 commands in flight over 4 streams, a PlaceOrder of a new order each),
 * side by side in one run, on three clusters started alike:
 *  (off)  no OTEL_* variable: the SDK is not loaded;
 *  (0 %)  the SDK loaded and exporting, sampler always_off: every span is a
 *         no-op, only the context is carried;
 *  (100 %) sampled at 100 %, exporting OTLP/HTTP (protobuf, the default) to a
 *         local receiver that reads and discards each request.
 * The modes take turns for R rounds (default 3), each round starting with the
 * next mode, and the ratios compare the totals; each round's own ratio (its
 * median and range) shows how far the machine's drift moves them, and so
 * how much one run can say. CPU per command by process says where the cost goes.
 */
import { createServer } from 'node:http';
import { createClient } from '../src/client/index.js';
import { startCluster, type Cluster } from '../test/support/cluster.js';
import { placeOrder } from '../test/support/grpc.js';
import { closedLoop, cpuPerCommand, durationFromArgs, numberArg, printTable, type LoadResult } from './support.js';

const IN_FLIGHT = 64;
const STREAMS = 4;

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

interface Mode {
  readonly key: string;
  readonly label: string;
  readonly env: Record<string, string>;
}

export async function run(_server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const rounds = numberArg(args, '--rounds', 3);
  const exported = { requests: 0, bytes: 0 };
  const receiver = createServer((req, res) => {
    req.on('data', (c: Buffer) => (exported.bytes += c.length));
    req.on('end', () => {
      exported.requests++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as { port: number }).port;
  const otlp = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` };
  const modes: Mode[] = [
    { key: 'off', label: 'tracing off', env: {} },
    { key: 'zero', label: 'tracing on, sampled 0 %', env: { ...otlp, OTEL_TRACES_SAMPLER: 'always_off' } },
    { key: 'full', label: 'tracing on, sampled 100 %', env: { ...otlp, OTEL_TRACES_SAMPLER: 'always_on' } },
  ];
  console.log(`tracing: streaming via router to 3 shards, ${IN_FLIGHT} in flight over ${STREAMS} streams; ${durationMs / 1000}s per case, ${rounds} rounds\n`);

  const clusters: Cluster[] = [];
  try {
    for (const mode of modes) {
      clusters.push(
        await startCluster({
          shards: 3,
          shardEnv: { LOG_LEVEL: 'error', ...mode.env },
          routerEnv: { LOG_LEVEL: 'error', STREAM_MAX_IN_FLIGHT: '4096', ...mode.env },
        }),
      );
    }
    const streams = clusters.map((c) => Array.from({ length: STREAMS }, () => createClient(c.router.address)));
    const streaming = (m: number, label: string, ms: number) =>
      closedLoop(label, IN_FLIGHT, ms, async (w, i) => {
        await streams[m]![w % STREAMS]!.placeOrder({ ...placeOrder(`t${m}-${label.length}-${w}-${i}-${Date.now() % 1e6}`), shippingAddress: address(i) });
      });
    // Freshly started processes are still compiling their hot paths: warm every one up first.
    for (const [m] of modes.entries()) await streaming(m, 'warm-up', 3000);

    const runs = modes.map(() => [] as LoadResult[]);
    const cpu = modes.map(() => [] as Record<string, number>[]);
    for (let k = 1; k <= rounds; k++) {
      // Each round starts with the next mode: a machine that slows down (or speeds up) during a round
      // does not always charge the same mode for it.
      for (let j = 0; j < modes.length; j++) {
        const m = (k - 1 + j) % modes.length;
        const mode = modes[m]!;
        const c = clusters[m]!;
        const procs = { client: process.pid, router: c.router.pid, ...Object.fromEntries(c.shards.map((s) => [s.id, s.process.pid])) };
        const r = await cpuPerCommand(procs, () => streaming(m, `(${mode.key}) ${mode.label} #${k}`, durationMs));
        runs[m]!.push(r.result);
        cpu[m]!.push(r.perCommandUs);
      }
    }
    for (const s of streams.flat()) s.close();

    printTable(runs.flat());
    const perSecond = (rs: readonly LoadResult[]) => rs.reduce((n, r) => n + r.ok, 0) / rs.reduce((s, r) => s + r.seconds, 0);
    const [off, zero, full] = runs.map(perSecond) as [number, number, number];
    console.log(`\ncommands/s over ${rounds} rounds: off ${off.toFixed(0)}, on at 0 % ${zero.toFixed(0)}, on at 100 % ${full.toFixed(0)}`);
    console.log(`cost of tracing at 100 %: ${((1 - full / off) * 100).toFixed(1)} % of throughput (target <= 15 %); at 0 %: ${((1 - zero / off) * 100).toFixed(1)} %`);
    // How much one round's ratio says: this machine's speed drifts between and within runs.
    const costs = (m: number) => runs[m]!.map((r, k) => (1 - r.perSecond / runs[0]![k]!.perSecond) * 100).sort((a, b) => a - b);
    const spread = (c: number[]) => `median ${c[Math.floor((c.length - 1) / 2)]!.toFixed(1)} %, range ${c[0]!.toFixed(1)} to ${c.at(-1)!.toFixed(1)} %`;
    console.log(`cost per round (against the same round's off): at 100 % ${spread(costs(2))}; at 0 % ${spread(costs(1))}`);
    console.log(`exported: ${exported.requests} OTLP requests, ${(exported.bytes / 1e6).toFixed(1)} MB`);
    console.log('\nmean µs of CPU per successful command, by process:');
    for (const [m, mode] of modes.entries()) {
      const mean: Record<string, number> = {};
      for (const key of Object.keys(cpu[m]![0] ?? {})) mean[key] = Math.round(cpu[m]!.reduce((s, r) => s + r[key]!, 0) / cpu[m]!.length);
      const total = Object.values(mean).reduce((x, y) => x + y, 0);
      console.log(
        `  ${mode.label}: ${Object.entries(mean)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}; total ${total} µs`,
      );
    }
  } finally {
    for (const c of clusters) await c.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}

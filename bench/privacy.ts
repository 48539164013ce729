/**
 * `npm run bench -- privacy [--seconds N] [--rounds R]`: what crypto-shredding
 * costs the write path, in one run, on one cluster of 3 shards: its shards are
 * restarted with PERSONAL_DATA_ENCRYPTION off or on before each case (same
 * stores, same router, same ring database: two clusters side by side differ
 * by more than encryption on a shared machine). Every command is a PlaceOrder
 * of a new order (an e-mail and an address to seal), streamed
 * (CommandStreamService) through the router, 64 in flight over 4 streams:
 *  (off)  encryption off;
 *  (on)   encryption on, the orders' 1,000 customers' keys already created
 *         (the usual case: a customer orders again);
 *  (new)  encryption on, a new customer on every order (a key created in the
 *         ring database for each: the worst case).
 * The cases alternate for R rounds (default 4, every other one in the opposite
 * order), each after a warm-up; ratios compare the totals, and the shards' CPU
 * per command is printed beside them (steadier than throughput on a shared
 * machine).
 */
import { createClient } from '../src/client/index.js';
import { startCluster, type Cluster } from '../test/support/cluster.js';
import { closedLoop, cpuPerCommand, durationFromArgs, numberArg, printTable, type LoadResult } from './support.js';

const IN_FLIGHT = 64;
const STREAMS = 4;
/** Customers of the (on) case. */
const CUSTOMERS = 1000;

const order = (id: string, customer: string) => ({
  orderId: id,
  customerId: customer,
  customerEmail: `${customer}@mail.example`,
  shippingAddress: { name: `Customer ${customer}`, line1: `${customer} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' },
});

const perSecond = (runs: readonly LoadResult[]) => runs.reduce((n, r) => n + r.ok, 0) / runs.reduce((s, r) => s + r.seconds, 0);

export async function run(_server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const rounds = numberArg(args, '--rounds', 4);
  console.log(`privacy: PlaceOrder streamed through the router to 3 shards, ${IN_FLIGHT} in flight; ${durationMs / 1000}s per case, ${rounds} rounds\n`);
  const env = { LOG_LEVEL: 'error' };
  const cluster = await startCluster({ shards: 3, shardEnv: env, routerEnv: { ...env, STREAM_MAX_IN_FLIGHT: '4096' } });
  const procs = (c: Cluster) => ({ client: process.pid, router: c.router.pid, ...Object.fromEntries(c.shards.map((s) => [s.id, s.process.pid])) });
  const streams = Array.from({ length: STREAMS }, () => createClient(cluster.router.address));
  let run = 0;
  const load = (label: string, ms: number, customer: (w: number, i: number) => string) => {
    const prefix = `r${++run}`;
    return closedLoop(label, IN_FLIGHT, ms, async (w, i) => {
      await streams[w % STREAMS]!.placeOrder(order(`${prefix}-${w}-${i}`, customer(w, i)));
    });
  };
  const known = (w: number, i: number) => `c${(w * 7919 + i) % CUSTOMERS}`;
  /** Restarts every shard with encryption on or off, and warms them up (JIT, connections, the customers' keys). */
  const mode = async (encryption: 'on' | 'off') => {
    await Promise.all(cluster.shards.map((s) => s.restart({ PERSONAL_DATA_ENCRYPTION: encryption })));
    await load(`(warm-up ${encryption})`, 3000, known);
  };
  try {
    const runs = { off: [] as LoadResult[], on: [] as LoadResult[], fresh: [] as LoadResult[] };
    const cpu = { off: [] as Record<string, number>[], on: [] as Record<string, number>[], fresh: [] as Record<string, number>[] };
    const cases = {
      off: async (k: number) => (await mode('off'), cpuPerCommand(procs(cluster), () => load(`(off) encryption off #${k}`, durationMs, known))),
      on: async (k: number) => (await mode('on'), cpuPerCommand(procs(cluster), () => load(`(on) encryption on, known customers #${k}`, durationMs, known))),
      fresh: async (k: number) => (await mode('on'), cpuPerCommand(procs(cluster), () => load(`(new) encryption on, a new customer each #${k}`, durationMs, (w, i) => `n${k}-${w}-${i}`))),
    };
    for (let k = 1; k <= rounds; k++) {
      // The machine drifts within a round: every other round runs the cases in the opposite order.
      const order = (['off', 'on', 'fresh'] as const).slice();
      if (k % 2 === 0) order.reverse();
      for (const key of order) {
        const r = await cases[key](k);
        runs[key].push(r.result);
        cpu[key].push(r.perCommandUs);
      }
    }
    printTable([...runs.off, ...runs.on, ...runs.fresh]);
    const change = (x: readonly LoadResult[]) => `${((perSecond(x) / perSecond(runs.off) - 1) * 100).toFixed(1)}%`;
    console.log(`\nthroughput vs encryption off (totals over ${rounds} rounds): on ${change(runs.on)}, new customer each ${change(runs.fresh)}   (target: at most 15% lower)`);
    const mean = (rs: readonly Record<string, number>[]) => {
      const out: Record<string, number> = {};
      for (const k of Object.keys(rs[0] ?? {})) out[k] = Math.round(rs.reduce((t, r) => t + r[k]!, 0) / rs.length);
      return out;
    };
    const shards = (r: Record<string, number>) =>
      Object.entries(r)
        .filter(([p]) => p.startsWith('shard-'))
        .reduce((t, [, v]) => t + v, 0);
    console.log("CPU per command (µs; postgres = every PostgreSQL process on the machine, others' too):");
    for (const [label, rs] of [
      ['off', cpu.off],
      ['on', cpu.on],
      ['new', cpu.fresh],
    ] as const) {
      const m = mean(rs);
      console.log(
        `  ${label.padEnd(4)} shards ${shards(m)} (${Object.entries(m)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
      );
    }
  } finally {
    for (const c of streams) c.close();
    await cluster.close();
  }
}

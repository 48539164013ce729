/**
 * `npm run bench -- subscribe [--seconds N] [--events E] [--rounds R] [--coalesce MS]`
 * (`--coalesce`: the shards' TAIL_COALESCE_MS), in one run:
 *  (a) catch-up straight from one shard over a store of E events (default
 *      1,000,000): events/s from the first to `caught_up`;
 *  (b) the same store read through the router (the merge of 3 shards);
 *  (c) live delivery through the router while 64 commands are in flight over 4
 *      streams: commit-to-delivery latency p50/p99 (acknowledged → delivered;
 *      the commit lies between the command's send and its acknowledgement, so
 *      sent → delivered is printed too, as the upper bound);
 *  (d) command throughput (streaming, 64 in flight) with 0 and with 2 live
 *      subscribers through the router, alternating for R rounds (default 3),
 *      and the ratio of the totals.
 */
import * as grpc from '@grpc/grpc-js';
import { createClient } from '../src/client/index.js';
import { loadApi } from '../src/grpc/proto.js';
import type { SubscribeResponse__Output } from '../src/generated/shardwrite/v1/SubscribeResponse.js';
import { startCluster } from '../test/support/cluster.js';
import { placeOrder } from '../test/support/grpc.js';
import { readVarint } from '../src/grpc/wire-scan.js';
import { closedLoop, cpuPerCommand, durationFromArgs, numberArg, printTable, type LoadResult } from './support.js';

const api = loadApi();
const IN_FLIGHT = 64;

/** Subscribes and resolves with events/s once `caught_up` arrives. */
function catchUp(address: string): Promise<{ events: number; seconds: number }> {
  const client = new api.shardwrite.v1.SubscriptionService(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  const t0 = performance.now();
  let events = 0;
  return new Promise((resolve, reject) => {
    const call = client.subscribe({ from: '', aggregateTypes: [], eventTypes: [], maxBatch: 256 });
    call.on('data', (r: SubscribeResponse__Output) => {
      if (r.event) events++;
      else if (r.events) events += r.events.events.length;
      else if (r.caughtUp) {
        const seconds = (performance.now() - t0) / 1000;
        call.cancel();
        client.close();
        resolve({ events, seconds });
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
  });
}

/**
 * A live subscriber from the end that only counts what arrives, without
 * decoding it: the benchmark measures the service's cost, not a consumer's.
 */
function counting(address: string, onMessage: () => void): Promise<() => void> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const identity = (b: Buffer) => b;
  const request = api.shardwrite.v1.SubscriptionService.service.Subscribe.requestSerialize({ from: 'end', aggregateTypes: [], eventTypes: [], maxBatch: 256 });
  const call = client.makeServerStreamRequest('/shardwrite.v1.SubscriptionService/Subscribe', identity, identity, request);
  let ready = false;
  return new Promise((resolve) => {
    call.on('data', (b: Buffer) => {
      // The first byte says which response it is: 0x0a an event, 0x2a a batch of them, 0x1a caught_up.
      if (b[0] === 0x0a) onMessage();
      else if (b[0] === 0x2a) for (let i = 0; i < countBatch(b); i++) onMessage();
      else if (b[0] === 0x1a && !ready) {
        ready = true;
        resolve(() => {
          call.cancel();
          client.close();
        });
      }
    });
    call.on('error', () => {});
  });
}

/** The events in an encoded `events` response, counted without decoding them. */
function countBatch(b: Buffer): number {
  const c = { pos: 1, end: b.length };
  const end = readVarint(b, c) + c.pos;
  let n = 0;
  while (c.pos < end) {
    c.pos++; // the tag of field 1
    const length = readVarint(b, c);
    c.pos += length;
    n++;
  }
  return n;
}

/** A live subscriber from the end that calls `onEvent` with each order id it sees. */
function live(address: string, onEvent: (aggregateId: string) => void): Promise<() => void> {
  const client = new api.shardwrite.v1.SubscriptionService(address, grpc.credentials.createInsecure());
  const call = client.subscribe({ from: 'end', aggregateTypes: [], eventTypes: [], maxBatch: 256 });
  return new Promise((resolve) => {
    call.on('data', (r: SubscribeResponse__Output) => {
      if (r.event) onEvent(r.event.aggregateId);
      else if (r.events) for (const e of r.events.events) onEvent(e.aggregateId);
      else if (r.caughtUp)
        resolve(() => {
          call.cancel();
          client.close();
        });
    });
    call.on('error', () => {});
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

export async function run(_server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const total = numberArg(args, '--events', 1_000_000);
  const rounds = numberArg(args, '--rounds', 3);
  const coalesceMs = numberArg(args, '--coalesce', undefined);
  const coalesce: Record<string, string> = coalesceMs === undefined ? {} : { TAIL_COALESCE_MS: String(coalesceMs) };
  console.log(`subscribe: catch-up over ${total.toLocaleString('en')} events on one shard; live and write cases ${durationMs / 1000}s, ${IN_FLIGHT} commands in flight over 4 streams\n`);
  const cluster = await startCluster({ shards: 3, shardEnv: { LOG_LEVEL: 'error', ...coalesce }, routerEnv: { LOG_LEVEL: 'error' } });
  try {
    const shard = cluster.shards[0]!;
    const t0 = performance.now();
    for (let done = 0; done < total; done += 100_000) {
      const n = Math.min(100_000, total - done);
      await shard.sql.query(
        `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
         SELECT 'order-header-seed-' || (($1::int + g) / 10), (($1::int + g) % 10) + 1, 'OrderPlaced', 1,
                jsonb_build_object('customerId', 'cust-' || g, 'customerEmail', 'c' || g || '@example.com',
                  'shippingAddress', jsonb_build_object('name', 'Customer', 'line1', g || ' Main St', 'city', 'Berlin', 'postalCode', '10115', 'country', 'DE')),
                jsonb_build_object('command_id', 'seed-' || g)
         FROM generate_series(0, $2::int - 1) g`,
        [done, n],
      );
    }
    await shard.sql.query('ANALYZE events');
    console.log(`seeded ${total.toLocaleString('en')} events into ${shard.id} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);

    const direct = await catchUp(shard.address);
    const routed = await catchUp(cluster.routerAddress);

    const streams = Array.from({ length: 4 }, () => createClient(cluster.routerAddress));
    let n = 0;
    const sentAt = new Map<string, number>();
    const ackedAt = new Map<string, number>();
    const write = (label: string, ms: number) =>
      closedLoop(label, IN_FLIGHT, ms, async (w) => {
        const id = `w${++n}`;
        sentAt.set(id, performance.now());
        await streams[w % 4]!.placeOrder(placeOrder(id));
        ackedAt.set(id, performance.now());
      });
    await write('(warm-up)', 2000);

    const fromAck: number[] = [];
    const fromSend: number[] = [];
    const stopLatency = await live(cluster.routerAddress, (id) => {
      const now = performance.now();
      const sent = sentAt.get(id);
      const acked = ackedAt.get(id);
      if (sent !== undefined) fromSend.push(now - sent);
      if (acked !== undefined) fromAck.push(Math.max(0, now - acked));
      sentAt.delete(id);
      ackedAt.delete(id);
    });
    const withLatency = await write('(c) commands while one subscriber measures delivery', durationMs);
    await new Promise((r) => setTimeout(r, 500));
    stopLatency();
    fromAck.sort((a, b) => a - b);
    fromSend.sort((a, b) => a - b);

    const procs: Record<string, number> = { client: process.pid, router: cluster.router.pid, ...Object.fromEntries(cluster.shards.map((s) => [s.id, s.process.pid])) };
    const without: LoadResult[] = [];
    const withSubs: LoadResult[] = [];
    const cpu = { without: [] as Record<string, number>[], with: [] as Record<string, number>[] };
    for (let k = 1; k <= rounds; k++) {
      const w = await cpuPerCommand(procs, () => write(`(d) 0 subscribers #${k}`, durationMs));
      without.push(w.result);
      cpu.without.push(w.perCommandUs);
      let delivered = 0;
      const stops = await Promise.all([counting(cluster.routerAddress, () => delivered++), counting(cluster.routerAddress, () => delivered++)]);
      const r = await cpuPerCommand(procs, () => write(`(d) 2 subscribers #${k}`, durationMs));
      await new Promise((res) => setTimeout(res, 300));
      for (const s of stops) s();
      withSubs.push({ ...r.result, extra: { delivered } });
      cpu.with.push(r.perCommandUs);
    }
    for (const s of streams) s.close();

    printTable([withLatency, ...without, ...withSubs]);
    const rate = (runs: LoadResult[]) => runs.reduce((s, r) => s + r.ok, 0) / runs.reduce((s, r) => s + r.seconds, 0);
    console.log('');
    console.log(
      `(a) catch-up straight from ${shard.id}:       ${Math.round(direct.events / direct.seconds).toLocaleString('en')} events/s (${direct.events.toLocaleString('en')} events in ${direct.seconds.toFixed(1)}s)   (target >= 50,000 per shard)`,
    );
    console.log(
      `(b) catch-up through the router (3 shards): ${Math.round(routed.events / routed.seconds).toLocaleString('en')} events/s (${routed.events.toLocaleString('en')} events in ${routed.seconds.toFixed(1)}s)`,
    );
    console.log(
      `(c) live, acknowledged → delivered: p50 ${pct(fromAck, 50).toFixed(1)} ms, p99 ${pct(fromAck, 99).toFixed(1)} ms; sent → delivered: p50 ${pct(fromSend, 50).toFixed(1)} ms, p99 ${pct(fromSend, 99).toFixed(1)} ms (${fromAck.length} events)   (target p99 <= 50 ms)`,
    );
    const mean = (runs: Record<string, number>[]) =>
      Object.keys(runs[0] ?? {})
        .map((key) => `${key} ${Math.round(runs.reduce((sum, r) => sum + r[key]!, 0) / runs.length)}`)
        .join(', ');
    console.log(`    CPU per command (µs) without subscribers: ${mean(cpu.without)}`);
    console.log(`    CPU per command (µs) with 2 subscribers:  ${mean(cpu.with)}`);
    console.log(
      `(d) write throughput with 2 live subscribers / without: ${(rate(withSubs) / rate(without)).toFixed(2)} [${withSubs.map((r, i) => (r.perSecond / without[i]!.perSecond).toFixed(2)).join(', ')}]   (target >= 0.90)`,
    );
  } finally {
    await cluster.close();
  }
}

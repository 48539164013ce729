/**
 * `npm run bench -- hot [--seconds N]`: 64 unary callers on ONE aggregate
 * beside 64 callers spread over 10,000 aggregates, against a real shard
 * process: successful commands/s, latency, and conflicts surfaced to clients.
 */
import * as grpc from '@grpc/grpc-js';
import { startShardProcess } from '../test/support/processes.js';
import { connect, placeOrder, type Clients } from '../test/support/grpc.js';
import { benchDatabase, closedLoop, durationFromArgs, printTable, type LoadResult } from './support.js';

const CALLERS = 64;
const SPREAD = 10_000;
const CHANNELS = 4;

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

async function load(label: string, clients: Clients[], durationMs: number, orderFor: (w: number, i: number) => string): Promise<LoadResult> {
  let conflicts = 0;
  const result = await closedLoop(label, CALLERS, durationMs, async (w, i) => {
    const out = await clients[w % clients.length]!.attempt('UpdateShippingAddress', {
      orderId: orderFor(w, i),
      commandId: `${label}-${w}-${i}`,
      shippingAddress: address(i),
    });
    if ('error' in out) {
      if (out.error.code === grpc.status.ABORTED) conflicts++;
      throw new Error(`${grpc.status[out.error.code]}: ${out.error.message}`);
    }
  });
  return { ...result, extra: { 'conflicts surfaced': conflicts } };
}

export async function run(server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const db = await benchDatabase(server);
  const shard = await startShardProcess({ DATABASE_URL: db.url, LOG_LEVEL: 'error' });
  const clients = Array.from({ length: CHANNELS }, () => connect(shard.address));
  try {
    console.log(`hot: ${CALLERS} callers over ${CHANNELS} channels to one shard process, ${durationMs / 1000}s per case\n`);
    await clients[0]!.call('PlaceOrder', placeOrder('hot'));
    for (let i = 0; i < SPREAD; i += 256) {
      await Promise.all(Array.from({ length: Math.min(256, SPREAD - i) }, (_, k) => clients[k % CHANNELS]!.call('PlaceOrder', placeOrder(`spread-${i + k}`))));
    }
    const hot = await load('hot: 1 aggregate', clients, durationMs, () => 'hot');
    const spread = await load(`spread: ${SPREAD} aggregates`, clients, durationMs, () => `spread-${Math.floor(Math.random() * SPREAD)}`);
    printTable([hot, spread]);
    console.log(`\nhot / spread: ${((hot.perSecond / spread.perSecond) * 100).toFixed(0)}%   (targets: hot >= 1,500/s, 0 conflicts, >= 30% of spread)`);
  } finally {
    for (const c of clients) c.close();
    await shard.stop();
    await db.drop();
  }
}

/**
 * The client's `subscribe()` against real processes: following from the
 * beginning while writers run, it sees every acknowledged event, each
 * stream's in version order, nothing twice — also when the server it
 * follows (a shard, the router) is killed and started again: it resumes
 * from the last checkpoint it received.
 */
import { asError } from '../../src/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, subscribe, type ReceivedEvent } from '../../src/client/index.js';
import { tailCommand } from '../../cli/tail.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startLoad } from '../support/ledger.js';
import { ackedVersions, followViolations, reachedAcks } from '../support/follow-check.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ shards: 3 });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

async function follow(address: string, run: () => Promise<{ acks: ReturnType<typeof ackedVersions>; filter: (streamId: string) => boolean }>) {
  const received: ReceivedEvent[] = [];
  const sub = subscribe(address, { from: '', reconnect: { baseMs: 50, capMs: 500 } });
  let failure: unknown;
  const reading = (async () => {
    for await (const e of sub) received.push(e);
  })().catch((err: unknown) => (failure = err));
  const { acks, filter } = await run();
  const mine = () => received.filter((e) => filter(e.streamId));
  const deadline = Date.now() + 30_000;
  while (!reachedAcks(mine(), acks) && Date.now() < deadline && failure === undefined) await sleep(100);
  sub.close();
  await reading;
  if (failure !== undefined) throw asError(failure);
  return { received: mine(), acks, reconnects: sub.reconnects };
}

describe('subscribe() against real processes', () => {
  it('sees every acknowledged event of a shard in order per stream although the shard is killed and restarted', async () => {
    const shard = cluster.shard('shard-0');
    const { received, acks, reconnects } = await follow(shard.address, async () => {
      const load = startLoad({ target: cluster.routerAddress, prefix: `sub-shard-${Date.now()}`, clients: 8, ordersPerClient: 4 });
      await sleep(1500);
      shard.process.signal('SIGKILL');
      await shard.process.exited;
      await sleep(300);
      await shard.restart();
      await sleep(1500);
      const ledger = await load.stop();
      // Only shard-0's streams: a subscription sent to a shard covers that shard.
      const owned = (streamId: string) => cluster.ownerOf(streamId.replace(/^order-(header|lines|payment)-/, '')) === 'shard-0';
      const acked = new Map([...ackedVersions(ledger.acks)].filter(([s]) => owned(s)));
      return { acks: acked, filter: owned };
    });
    expect(acks.size).toBeGreaterThan(0);
    expect(reconnects).toBeGreaterThanOrEqual(1);
    expect(followViolations(received, acks)).toEqual([]);
  }, 120_000);

  it('sees every acknowledged event of the cluster through the router while writers run and the router is restarted', async () => {
    const { received, acks, reconnects } = await follow(cluster.routerAddress, async () => {
      const load = startLoad({ target: cluster.routerAddress, prefix: `sub-router-${Date.now()}`, clients: 16, ordersPerClient: 4 });
      await sleep(1500);
      cluster.router.signal('SIGKILL');
      await cluster.router.exited;
      await sleep(300);
      await cluster.restartRouter();
      await sleep(1500);
      const ledger = await load.stop();
      return { acks: ackedVersions(ledger.acks), filter: (s) => s.includes(ledger.prefix) };
    });
    expect(acks.size).toBeGreaterThan(0);
    expect(reconnects).toBeGreaterThanOrEqual(1);
    expect(followViolations(received, acks)).toEqual([]);
  }, 120_000);

  it('shardwrite tail prints each new event of the chosen type as one line', async () => {
    const lines: string[] = [];
    const notes: string[] = [];
    const stop = new AbortController();
    const tail = tailCommand(['--type', 'order-header', '--address', cluster.routerAddress], { line: (t) => lines.push(t), error: (t) => notes.push(t), tty: false }, stop.signal);
    const client = createClient(cluster.routerAddress);
    const orderId = `tail-${Date.now()}`;
    // "--from end" follows what commits after the subscription started: wait until it is live.
    await expect.poll(() => notes.some((n) => n.includes('caught up')), { timeout: 20_000 }).toBe(true);
    await client.placeOrder({
      orderId,
      commandId: `${orderId}-1`,
      customerId: 'c',
      customerEmail: 'c@example.com',
      shippingAddress: { name: 'A', line1: '1 St', city: 'X', postalCode: '1', country: 'GB' },
    });
    await client.addOrderLine({ orderId, commandId: `${orderId}-2`, lineId: 'l1', sku: 's', quantity: 1, unitPriceCents: 5 });
    await client.markPaymentCaptured({ orderId, commandId: `${orderId}-3a`, amountCents: 5 });
    await client.shipOrder({ orderId, commandId: `${orderId}-3`, carrier: 'ups', trackingNumber: 'T1' });
    await expect.poll(() => lines.filter((l) => l.includes(orderId)).length, { timeout: 20_000 }).toBe(3);
    stop.abort();
    expect(await tail).toBe(0);
    client.close();
    const mine = lines.filter((l) => l.includes(orderId));
    expect(mine[0]).toMatch(new RegExp(`^shard-\\d+  order-header-${orderId}  v1  OrderPlaced  \\{.*"customerId":"c"`));
    expect(mine[1]).toMatch(new RegExp(`^shard-\\d+  order-header-${orderId}  v2  PaymentCaptureRecorded  `));
    expect(mine[2]).toMatch(new RegExp(`^shard-\\d+  order-header-${orderId}  v3  OrderShipped  \\{"carrier":"ups"`));
  }, 60_000);
});

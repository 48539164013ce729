/**
 * The client's `subscribe()` against real processes: following from the
 * beginning while writers run, it sees every acknowledged event, each
 * stream's in version order, nothing twice — also when the server it
 * follows is killed and started again (it resumes from the last checkpoint).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribe, type ReceivedEvent } from '../../src/client/index.js';
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
  if (failure !== undefined) throw failure;
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

  it('sees every acknowledged event of the cluster through the router while writers run', async () => {
    const { received, acks } = await follow(cluster.routerAddress, async () => {
      const load = startLoad({ target: cluster.routerAddress, prefix: `sub-router-${Date.now()}`, clients: 16, ordersPerClient: 4 });
      await sleep(3000);
      const ledger = await load.stop();
      return { acks: ackedVersions(ledger.acks), filter: (s) => s.includes(ledger.prefix) };
    });
    expect(acks.size).toBeGreaterThan(0);
    expect(followViolations(received, acks)).toEqual([]);
  }, 120_000);
});

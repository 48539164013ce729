/**
 * `shardwrite ring abort` with real processes under a ledger load: a move
 * stopped before its switch-over is abandoned — every stream stays with its
 * old owner with every acknowledged event, nothing is left sealed, the
 * shards the move copied to hold no copies, the old membership is published
 * at the move's epoch, and commands keep working. After the switch-over the
 * abort refuses and says what to do instead.
 *
 * The tests share one cluster (shard-0, shard-1 on the ring; shard-2 spare)
 * and run in order: an add aborted after its seal (epoch 2), a remove aborted
 * mid-copy (epoch 3), an add that switched and cannot be aborted (epoch 4).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { Rebalancer } from '../../src/rebalance/rebalancer.js';
import type { MoveRequest } from '../../src/rebalance/plan.js';
import { RingView, type RingDocument } from '../../src/ring/index.js';
import { checkStores } from '../support/checker.js';
import { MOVING_LOAD_DEADLINE_MS, startLoad, summaryLine, type LoadRun } from '../support/ledger.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { liveStreams, sealedLeft, seedOrders } from './support/stores.js';
import { expectRejection } from '../support/expect-error.js';

const CLIENTS = 32;
const SEEDED = 3000;
/** What a caller may hear while streams are sealed: both write nothing (see rebalance.e2e.test.ts). */
const MOVE_ANSWERS = ['UNAVAILABLE/STREAM_MOVING', 'FAILED_PRECONDITION/WRONG_SHARD'];

let cluster: Cluster;

async function ring(args: string[]): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const out: Output = { tty: false, line: (t) => lines.push(t), error: (t) => errors.push(t) };
  const code = await ringCommand(args, { RING_DATABASE_URL: cluster.ringUrl }, out);
  return { code, lines, errors };
}

async function currentRing(): Promise<RingDocument> {
  return (await cluster.ringStore.current())!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function orderOf(streamId: string): string {
  return streamId.replace(/^order-(header|lines|payment)-/, '');
}

function load(prefix: string): LoadRun {
  return startLoad({ target: cluster.routerAddress, prefix, clients: CLIENTS, ordersPerClient: 3, deadlineMs: MOVING_LOAD_DEADLINE_MS, expect: MOVE_ANSWERS });
}

/** Runs `request` and stops it when `stopAt` says so; resolves once it has stopped. */
async function interrupted(request: MoveRequest, stopAt: (phase: string, eventsCopied: number) => boolean, tuning: { batchStreams?: number; pauseMs?: number } = {}) {
  const stop = new AbortController();
  const rebalancer = new Rebalancer({
    ringDatabaseUrl: cluster.ringUrl,
    planNoticeMs: 300,
    ...tuning,
    signal: stop.signal,
    onProgress: (p) => {
      if (!stop.signal.aborted && stopAt(p.phase, p.figures.eventsCopied)) stop.abort(new Error('interrupted by the test'));
    },
  });
  await expectRejection(rebalancer.run(request), /interrupted by the test/);
}

async function acked(run: LoadRun): Promise<number> {
  return run.ledger.states().acked;
}

/** Every store's move fence. */
async function moveFences(): Promise<(string | null)[]> {
  return Promise.all(cluster.shards.map(async (s) => (await s.sql.query('SELECT moving_epoch::text AS m FROM shard_fence')).rows[0].m));
}

/** Rows of a store that a move's copy writes. */
async function held(shardId: string): Promise<{ streams: number; events: number; commands: number; snapshots: number; archived: number }> {
  const sql = cluster.shard(shardId).sql;
  const n = async (q: string) => Number((await sql.query(q)).rows[0].n);
  return {
    streams: await n('SELECT count(*) AS n FROM streams'),
    events: await n('SELECT count(*) AS n FROM events'),
    commands: await n('SELECT count(*) AS n FROM command_results'),
    snapshots: await n('SELECT count(*) AS n FROM snapshots'),
    archived: await n('SELECT count(*) AS n FROM moved_events'),
  };
}

/**
 * Stops the load and proves it: nothing acknowledged lost or duplicated, every
 * stream live on exactly one shard, its owner under `ring`, and nothing sealed.
 */
async function settle(name: string, run: LoadRun, ring: RingDocument): Promise<void> {
  const ledger = await run.stop();
  const check = await checkStores(cluster.stores(), ledger);
  console.log(summaryLine(`abort: ${name}`, ledger, check));
  expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
  expect(check.lost).toBe(0);
  expect(check.duplicated).toBe(0);
  const view = new RingView(ring);
  const misplaced: string[] = [];
  for (const [streamId, shards] of await liveStreams(cluster)) {
    if (shards.length !== 1 || shards[0] !== view.ownerOf(orderOf(streamId)).id) misplaced.push(`${streamId} on ${shards.join('+')}`);
  }
  expect(misplaced.slice(0, 10)).toEqual([]);
  expect(await sealedLeft(cluster)).toBe(0);
  expect(cluster.dead()).toEqual([]);
}

beforeAll(async () => {
  // Snapshots every other event, so copies carry snapshots (which an abort must remove too).
  cluster = await startCluster({ shards: 2, spares: 1, shardEnv: { SNAPSHOT_INTERVAL: '2' } });
  await seedOrders(cluster, await currentRing(), 'seed', SEEDED);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

describe('ring abort', () => {
  it('with no move in progress changes nothing', async () => {
    const r = await ring(['abort']);
    expect(r.code, r.errors.join('\n')).toBe(0);
    expect(r.lines.at(-1)).toMatch(/no move in progress \(ring epoch 1\): nothing to abort/);
    expect((await currentRing()).epoch).toBe(1);
  });

  it('abandons an add stopped after its seal, under load: the old owners keep every stream and serve them again, the new shard holds nothing', async () => {
    const ring1 = await currentRing();
    const shard2 = cluster.shard('shard-2');
    const run = load(`ab-${randomBytes(3).toString('hex')}`);
    await sleep(1500);
    // Stopped right before `publish`: copied, sealed, checked — the latest point before the switch-over.
    await interrupted({ kind: 'add', shardId: 'shard-2', address: shard2.address }, (phase) => phase === 'publish');
    expect((await held('shard-2')).streams).toBeGreaterThan(SEEDED / 4);
    expect((await moveFences()).filter((m) => m === '2')).toHaveLength(2);
    expect((await ring(['status', '--json'])).lines.join('')).toContain('"phase":"publish"');

    const before = await acked(run);
    const r = await ring(['abort']);
    expect(r.code, r.errors.join('\n')).toBe(0);
    expect(r.lines.at(-1)).toMatch(/^shard-2 owns nothing/);
    expect(r.lines.at(-2)).toMatch(/^aborted add shard-2 at .* in phase publish: ring epoch 2 keeps the old shards; [\d,]+ copies removed/);

    // The old membership at the move's epoch, no pending move, no seal, no copy.
    expect(await currentRing()).toEqual({ epoch: 2, shards: ring1.shards });
    expect(await cluster.ringStore.pendingMove()).toBeUndefined();
    expect(await moveFences()).toEqual([null, null, null]);
    const left = await held('shard-2');
    expect(left).toMatchObject({ streams: 0, events: 0, commands: 0, snapshots: 0 });
    expect(left.archived).toBeGreaterThan(0);
    const status = JSON.parse((await ring(['status', '--json'])).lines.join(''));
    expect(status.move).toMatchObject({ targetEpoch: 2, kind: 'add', shardId: 'shard-2', active: false, aborted: true, abortedPhase: 'publish' });

    // Commands keep working, the moving streams' included.
    await sleep(2000);
    expect((await acked(run)) - before).toBeGreaterThan(CLIENTS);
    await settle('add aborted after the seal', run, await currentRing());
    // Every seeded order is still at its old owner.
    for (const s of cluster.shards.slice(0, 2)) {
      const n = Number((await s.sql.query(`SELECT count(*) AS n FROM streams WHERE stream_id LIKE 'order-header-seed-%'`)).rows[0].n);
      expect(n).toBe([...Array(SEEDED).keys()].filter((i) => new RingView(ring1).ownerOf(`seed-${i}`).id === s.id).length);
    }
  }, 180_000);

  it('abandons a remove stopped in the middle of its copy, under load', async () => {
    const ring2 = await currentRing();
    const run = load(`ar-${randomBytes(3).toString('hex')}`);
    await sleep(1500);
    const shard0Before = await held('shard-0');
    await interrupted({ kind: 'remove', shardId: 'shard-1' }, (phase, copied) => phase === 'precopy' && copied >= 200, { batchStreams: 50, pauseMs: 20 });
    const copies = (await held('shard-0')).streams - shard0Before.streams;
    expect(copies).toBeGreaterThan(0);

    // An abort stopped as soon as it began leaves the move rewound and says so; running it again finishes it.
    const stop = new AbortController();
    await expectRejection(new Rebalancer({ ringDatabaseUrl: cluster.ringUrl, signal: stop.signal, onProgress: () => stop.abort(new Error('stopped')) }).abort(), /stopped/);
    const halfway = await ring(['status']);
    expect(halfway.lines.join('\n')).toMatch(/an abort of it \(from phase precopy\) did not finish: run `shardwrite ring abort` again/);
    expect((await currentRing()).epoch).toBe(2);

    const before = await acked(run);
    const r = await ring(['abort']);
    expect(r.code, r.errors.join('\n')).toBe(0);
    expect(r.lines.at(-1)).toMatch(/^aborted remove shard-1 in phase precopy: ring epoch 3 keeps the old shards; [\d,]+ copies removed/);
    expect(await currentRing()).toEqual({ epoch: 3, shards: ring2.shards });
    expect(await moveFences()).toEqual([null, null, null]);
    // shard-0 holds exactly its own streams again.
    const view = new RingView(ring2);
    const foreign = await cluster.shard('shard-0').sql.query<{ aggregate_id: string }>('SELECT aggregate_id FROM streams');
    expect(foreign.rows.filter((row) => view.ownerOf(row.aggregate_id).id !== 'shard-0')).toEqual([]);

    await sleep(2000);
    expect((await acked(run)) - before).toBeGreaterThan(CLIENTS);
    await settle('remove aborted mid-copy', run, await currentRing());
  }, 180_000);

  it('refuses once the move has switched the ring, and says how to undo it instead; the move then finishes', async () => {
    const shard2 = cluster.shard('shard-2');
    const run = load(`as-${randomBytes(3).toString('hex')}`);
    await sleep(1000);
    await interrupted({ kind: 'add', shardId: 'shard-2', address: shard2.address }, (phase) => phase === 'cleanup');
    expect((await currentRing()).epoch).toBe(4);

    const r = await ring(['abort']);
    expect(r.code).toBe(1);
    expect(r.errors.join('\n')).toMatch(
      new RegExp(`already switched the ring to epoch 4.*Finish it with \`shardwrite ring add shard-2 --address ${shard2.address}\`, then undo it with \`shardwrite ring remove shard-2\``),
    );
    expect(await cluster.ringStore.pendingMove()).toBeDefined();

    const finish = await ring(['add', 'shard-2', '--address', shard2.address]);
    expect(finish.code, finish.errors.join('\n')).toBe(0);
    expect(finish.lines.at(-1)).toMatch(/^ring epoch 4: added shard-2/);
    await sleep(1000);
    await settle('abort refused after the switch-over', run, await currentRing());
  }, 180_000);
});

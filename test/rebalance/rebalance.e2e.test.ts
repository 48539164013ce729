/**
 * Rebalancing under live load, with real processes: a router, shards on their
 * own stores, the ring database, and 64 clients sending commands (the ledger
 * driver) all the while. Each scenario proves its ledger against every store
 * afterwards (the checker): nothing acknowledged is lost, nothing duplicated,
 * every stream contiguous and on exactly one shard.
 *
 * The tests share one cluster and run in order: shard-3 joins and shard-2
 * leaves (epochs 2, 3); repeats change nothing; shard-4 joins while it gets
 * killed halfway (epoch 4); shard-1 leaves while the rebalancer itself gets
 * killed halfway (epoch 5).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { RingView, type RingDocument } from '../../src/ring/index.js';
import { checkStores, type CheckResult } from '../support/checker.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { MOVING_LOAD_DEADLINE_MS, startLoad, summaryLine, type Ledger, type LoadRun } from '../support/ledger.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { liveStreams, sealedLeft, seedOrders } from './support/stores.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const CLIENTS = 64;
const SEEDED = 6000;

let cluster: Cluster;
let client: Clients;

interface RingRun {
  readonly code: number;
  readonly lines: string[];
  readonly errors: string[];
}

/** `shardwrite ring <args>` in this process; `onLine` sees each progress line as it is printed. */
async function ring(args: string[], onLine: (line: string) => void = () => {}): Promise<RingRun> {
  const lines: string[] = [];
  const errors: string[] = [];
  const out: Output = {
    tty: false,
    line: (text) => {
      lines.push(text);
      onLine(text);
    },
    error: (text) => errors.push(text),
  };
  const code = await ringCommand(args, { RING_DATABASE_URL: cluster.ringUrl }, out);
  return { code, lines, errors };
}

interface StatusJson {
  epoch: number;
  shards: { id: string; address: string }[];
  move: { targetEpoch: number; kind: string; shardId: string; phase: string; active: boolean; figures: { streamsSeen: number; streamsTotal: number; eventsCopied: number } } | null;
}

async function status(): Promise<StatusJson> {
  const r = await ring(['status', '--json']);
  expect(r.code, r.errors.join('\n')).toBe(0);
  return JSON.parse(r.lines.join('')) as StatusJson;
}

async function currentRing(): Promise<RingDocument> {
  return (await cluster.ringStore.current())!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The aggregate (order) id of a stream id. */
function orderOf(streamId: string): string {
  return streamId.replace(/^order-(header|lines|payment)-/, '');
}

/**
 * What a caller may hear about a stream while it moves: "being moved, retry shortly" (the sealed window
 * outlasting MOVE_WAIT_MS), or WRONG_SHARD when the router's one retry at the new owner was not enough.
 * Both write nothing; anything else (a SHARD_UNAVAILABLE, a NOT_FOUND, an INTERNAL) is a finding.
 */
const MOVE_ANSWERS = ['UNAVAILABLE/STREAM_MOVING', 'FAILED_PRECONDITION/WRONG_SHARD'];

function load(prefix: string, ring: RingDocument): LoadRun {
  const view = new RingView(ring);
  return startLoad({
    target: cluster.routerAddress,
    prefix,
    clients: CLIENTS,
    ordersPerClient: 3,
    deadlineMs: MOVING_LOAD_DEADLINE_MS,
    ownerOf: (id) => view.ownerOf(id).id,
    expect: MOVE_ANSWERS,
  });
}

/** Stops the load, proves it against every store, and asserts what every scenario must hold. */
async function settle(name: string, run: LoadRun, extra: Record<string, string | number> = {}): Promise<{ ledger: Ledger; check: CheckResult }> {
  const ledger = await run.stop();
  const check = await checkStores(cluster.stores(), ledger);
  console.log(summaryLine(`rebalance: ${name}`, ledger, check, extra));
  expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
  expect(check.lost).toBe(0);
  expect(check.duplicated).toBe(0);
  expect(ledger.states().acked).toBeGreaterThan(CLIENTS);
  // Every stream lives on exactly one shard, its owner at the current epoch, and no old copy is left.
  const view = new RingView(await currentRing());
  const misplaced: string[] = [];
  for (const [streamId, shards] of await liveStreams(cluster)) {
    if (shards.length !== 1 || shards[0] !== view.ownerOf(orderOf(streamId)).id) misplaced.push(`${streamId} on ${shards.join('+')}`);
  }
  expect(misplaced.slice(0, 10)).toEqual([]);
  expect(await sealedLeft(cluster)).toBe(0);
  expect(cluster.dead()).toEqual([]);
  return { ledger, check };
}

/** Until every order of the run is placed (or 20 s). */
async function placed(run: LoadRun): Promise<void> {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const orders = [...run.ledger.commands.values()].filter((c) => c.method === 'PlaceOrder' && c.state === 'acked').length;
    if (orders >= CLIENTS * 3) return;
    await sleep(100);
  }
}

/** The moved share a move reported, checked against 1/(N+1) for N shards left after it (add) or before it (remove). */
function expectFairShare(s: StatusJson, shardsAfterAdd: number): number {
  const share = s.move!.figures.streamsTotal / s.move!.figures.streamsSeen;
  expect(Math.abs(share - 1 / shardsAfterAdd)).toBeLessThan(0.05);
  return share;
}

beforeAll(async () => {
  // Snapshots every other event, so moves carry snapshots too.
  cluster = await startCluster({ shards: 3, spares: 2, shardEnv: { SNAPSHOT_INTERVAL: '2' } });
  await seedOrders(cluster, await currentRing(), 'seed', SEEDED);
  client = connect(cluster.routerAddress);
}, 120_000);

afterAll(async () => {
  client?.close();
  await cluster?.close();
});

describe('rebalancing under load', () => {
  it('adds a shard and then removes one while 64 clients send commands: nothing lost or duplicated, only streams whose owner changes move, the others never notice', async () => {
    const ring1 = await currentRing();
    const shard3 = cluster.shard('shard-3');
    const ring2Plan: RingDocument = { epoch: 2, shards: [...ring1.shards, { id: 'shard-3', address: shard3.address }] };
    const ring3Plan: RingDocument = { epoch: 3, shards: ring2Plan.shards.filter((s) => s.id !== 'shard-2') };
    const [v1, v2, v3] = [new RingView(ring1), new RingView(ring2Plan), new RingView(ring3Plan)];
    const prefix = `rb-${randomBytes(3).toString('hex')}`;

    // Two orders acknowledged before the moves, to be retried with the same command ids after them.
    const idem = Array.from({ length: 200 }, (_, i) => `idem-${prefix}-${i}`);
    const toNew = idem.find((id) => v2.ownerOf(id).id === 'shard-3')!;
    const fromLeaving = idem.find((id) => v2.ownerOf(id).id === 'shard-2' && v3.ownerOf(id).id !== 'shard-2')!;
    const first = await Promise.all([toNew, fromLeaving].map((id) => client.call('PlaceOrder', placeOrder(id, { commandId: `${id}-place` }))));

    const run = load(prefix, ring1);
    await placed(run);
    await sleep(1500);
    // Snapshots of streams about to move, at their old owners: the move must carry them.
    const snapshotsBefore = new Map<string, number>();
    for (const until = Date.now() + 10_000; snapshotsBefore.size < 5 && Date.now() < until; await sleep(200)) {
      for (const s of cluster.shards.slice(0, 3)) {
        const r = await s.sql.query<{ stream_id: string; version: string }>('SELECT stream_id, version FROM snapshots');
        for (const row of r.rows) if (v2.ownerOf(orderOf(row.stream_id)).id === 'shard-3') snapshotsBefore.set(row.stream_id, Number(row.version));
      }
    }
    expect(snapshotsBefore.size).toBeGreaterThan(0);

    run.ledger.mark('add-start');
    const add = await ring(['add', 'shard-3', '--address', shard3.address]);
    run.ledger.mark('add-end');
    expect(add.code, add.errors.join('\n')).toBe(0);
    expect(add.lines.some((l) => l.includes('precopy:'))).toBe(true);
    expect(add.lines.at(-1)).toMatch(/^ring epoch 2: added shard-3; [\d,]+ streams moved/);
    expect(await currentRing()).toEqual(ring2Plan);
    const addShare = expectFairShare(await status(), 4);
    const carried = await shard3.sql.query<{ stream_id: string; version: string }>('SELECT stream_id, version FROM snapshots WHERE stream_id = ANY($1)', [[...snapshotsBefore.keys()]]);
    expect(carried.rows.length).toBe(snapshotsBefore.size);
    for (const row of carried.rows) expect(Number(row.version)).toBeGreaterThanOrEqual(snapshotsBefore.get(row.stream_id)!);

    await sleep(1500);
    run.ledger.mark('remove-start');
    const remove = await ring(['remove', 'shard-2']);
    run.ledger.mark('remove-end');
    expect(remove.code, remove.errors.join('\n')).toBe(0);
    expect(await currentRing()).toEqual(ring3Plan);
    const removeShare = expectFairShare(await status(), 4);
    expect((await cluster.shard('shard-2').sql.query('SELECT count(*)::int AS n FROM streams')).rows[0].n).toBe(0);
    await sleep(1500);

    const moved = (orderId: string) => v1.ownerOf(orderId).id !== v2.ownerOf(orderId).id || v2.ownerOf(orderId).id !== v3.ownerOf(orderId).id;
    const { ledger } = await settle('add shard-3, remove shard-2', run, {
      'add-ms': ledger0(run, 'add-end') - ledger0(run, 'add-start'),
      'remove-ms': ledger0(run, 'remove-end') - ledger0(run, 'remove-start'),
      'add-share': addShare.toFixed(3),
      'remove-share': removeShare.toFixed(3),
    });
    // The streams that kept their owner through both moves never saw an error, and kept being served throughout.
    expect(ledger.errors((c) => !moved(c.orderId))).toEqual({});
    for (const [from, to] of [
      ['add-start', 'add-end'],
      ['remove-start', 'remove-end'],
    ] as const) {
      const stayed = ledger.acksBetween(ledger.marks.get(from)!, ledger.marks.get(to)! + 1, () => true).filter((a) => !moved(a.orderId));
      expect(stayed.length).toBeGreaterThan(0);
    }
    // The moved ones were served by their new owners afterwards.
    expect(ledger.acksBetween(ledger.marks.get('remove-end')!, Date.now() + 1).filter((a) => moved(a.orderId)).length).toBeGreaterThan(0);

    // Idempotency survived both moves: the same command ids say duplicate, with the original result.
    for (const [i, id] of [toNew, fromLeaving].entries()) {
      const again = await client.call('PlaceOrder', placeOrder(id, { commandId: `${id}-place` }));
      expect(again).toMatchObject({ duplicate: true, version: first[i]!.version, streamId: first[i]!.streamId });
      expect((await client.readStream('order-header', id)).map((e) => e.type)).toEqual(['OrderPlaced']);
    }
  }, 90_000);

  it('repeating a finished add or remove changes nothing, and says so', async () => {
    const before = await currentRing();
    const streams = await liveStreams(cluster);
    const again = await ring(['add', 'shard-3', '--address', cluster.shard('shard-3').address]);
    expect(again.code).toBe(0);
    expect(again.lines.join('\n')).toMatch(/already on the ring.*nothing to do/);
    const removedAgain = await ring(['remove', 'shard-2']);
    expect(removedAgain.code).toBe(0);
    expect(removedAgain.lines.join('\n')).toMatch(/not on the ring.*nothing to do/);
    expect(await currentRing()).toEqual(before);
    expect(await liveStreams(cluster)).toEqual(streams);
    expect((await status()).move).toMatchObject({ targetEpoch: 3, phase: 'done', active: false });
  });

  it('a shard being added that is killed halfway: the move stops before the switch, another ring command is refused meanwhile, and rerunning it after a restart completes with the same guarantees', async () => {
    const ring3 = await currentRing();
    const shard4 = cluster.shard('shard-4');
    const run = load(`rk-${randomBytes(3).toString('hex')}`, ring3);
    await placed(run);
    await sleep(1000);

    let killed = false;
    const failed = await ring(['add', 'shard-4', '--address', shard4.address], (line) => {
      if (!killed && line.includes(') delta:')) {
        killed = true;
        shard4.process.signal('SIGKILL');
      }
    });
    expect(killed).toBe(true);
    expect(failed.code).toBe(1);
    expect(failed.errors.join('\n')).toMatch(/shard-4 at .* is not serving.*run `shardwrite ring add shard-4 --address .*` again/);
    expect(await currentRing()).toEqual(ring3);
    expect((await status()).move).toMatchObject({ targetEpoch: 4, kind: 'add', shardId: 'shard-4', phase: 'publish', active: true });
    // Another command is refused while this move is unfinished.
    const other = await ring(['remove', 'shard-0']);
    expect(other.code).toBe(1);
    expect(other.errors.join('\n')).toMatch(/a move is in progress: add shard-4.*rerun `shardwrite ring add shard-4/);

    await shard4.restart();
    const resumed = await ring(['add', 'shard-4', '--address', shard4.address]);
    expect(resumed.code, resumed.errors.join('\n')).toBe(0);
    expect(resumed.lines.at(-1)).toMatch(/^ring epoch 4: added shard-4; .*\(resumed\)$/);
    expect((await currentRing()).shards.map((s) => s.id)).toEqual(['shard-0', 'shard-1', 'shard-3', 'shard-4']);
    const share = expectFairShare(await status(), 4);
    await sleep(1500);
    await settle('add shard-4, killed halfway, rerun', run, { share: share.toFixed(3) });
  }, 90_000);

  it('a rebalancer killed with SIGKILL in the middle of a move is finished by running the same command again', async () => {
    const ring4 = await currentRing();
    const run = load(`rr-${randomBytes(3).toString('hex')}`, ring4);
    await placed(run);
    await sleep(1000);

    const tool = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'test/rebalance/support/cli-entry.ts'), 'ring', 'remove', 'shard-1', '--pause-ms', '100'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', RING_DATABASE_URL: cluster.ringUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<NodeJS.Signals | null>((done) => tool.once('exit', (_code, signal) => done(signal)));
    const sawSeal = new Promise<void>((done) => {
      tool.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(') delta:')) done();
      });
    });
    tool.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await Promise.race([sawSeal, exited.then(() => Promise.reject(new Error(`the rebalancer exited before its delta phase:\n${output}`)))]);
    tool.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect((await status()).move).toMatchObject({ targetEpoch: 5, kind: 'remove', shardId: 'shard-1', active: true });
    expect(await currentRing()).toEqual(ring4);

    const resumed = await ring(['remove', 'shard-1']);
    expect(resumed.code, resumed.errors.join('\n')).toBe(0);
    expect(resumed.lines.at(-1)).toMatch(/^shard-1 owns nothing now/);
    expect((await currentRing()).shards.map((s) => s.id)).toEqual(['shard-0', 'shard-3', 'shard-4']);
    const share = expectFairShare(await status(), 4);
    await sleep(1500);
    await settle('remove shard-1, rebalancer killed halfway, rerun', run, { share: share.toFixed(3) });
  }, 90_000);
});

function ledger0(run: LoadRun, mark: string): number {
  return run.ledger.marks.get(mark) ?? 0;
}

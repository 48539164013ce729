/**
 * Durable consumer groups against the real ring database (PostgreSQL), served
 * over gRPC on loopback, with an in-memory cluster feed standing in for the
 * shards (`support/fake-feeds.ts`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { addConsumerGroupService, type ConsumerGroups } from '../../router/consumer-groups/service.js';
import { DEFAULT_CONSUMER_GROUP_SETTINGS, type ConsumerGroupSettings } from '../../router/consumer-groups/settings.js';
import { desiredPartitions } from '../../router/consumer-groups/assignment.js';
import { cursorOf, hasPassed } from '../../router/consumer-groups/cursors.js';
import { RouterMetrics } from '../../router/metrics.js';
import type { GroupEvent__Output } from '../../src/generated/shardwrite/v1/GroupEvent.js';
import { bindInsecure } from '../../src/grpc/server.js';
import { partitionOf } from '../../src/subscriptions/partition.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startProcess } from '../support/processes.js';
import { FakeFeeds } from './support/fake-feeds.js';
import { TestMember, until } from './support/member.js';

/** Short enough for tests; the handover wait is long so that only acks can end it. */
const SETTINGS: ConsumerGroupSettings = { ...DEFAULT_CONSUMER_GROUP_SETTINGS, leaseMs: 1500, heartbeatMs: 100, handoverMs: 60_000, flushMs: 50 };

interface Harness {
  readonly address: string;
  readonly groups: ConsumerGroups;
  readonly registry: Registry;
  close(): Promise<void>;
}

let db: TestDatabase;
let sql: pg.Pool;
const harnesses: Harness[] = [];
const members: TestMember[] = [];

async function startRouter(feeds: FakeFeeds, settings = SETTINGS): Promise<Harness> {
  const server = new grpc.Server();
  const registry = new Registry();
  const groups = await addConsumerGroupService(server, {
    feeds,
    databaseUrl: db.url,
    settings,
    metrics: new RouterMetrics(registry),
    logger: pino({ level: 'silent' }),
  });
  const address = await bindInsecure(server, '127.0.0.1:0');
  let closed = false;
  const h: Harness = {
    address,
    groups,
    registry,
    async close() {
      if (closed) return;
      closed = true;
      await groups.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
  harnesses.push(h);
  return h;
}

function member(h: Harness, group: string, options: { autoAck?: boolean; partitions?: number; maxUnacked?: number; metadata?: Record<string, string> } = {}): TestMember {
  const m = new TestMember(h.address, { group, partitions: options.partitions ?? 4, maxUnacked: options.maxUnacked ?? 1000 }, options);
  members.push(m);
  return m;
}

const streams = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `order-header-${prefix}${i}`);
function appendRounds(feeds: FakeFeeds, ids: readonly string[], rounds: number): void {
  for (let r = 0; r < rounds; r++) for (const s of ids) feeds.append(s);
}

const key = (e: GroupEvent__Output) => `${e.event!.streamId}@${e.event!.version}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The events `acked` covers: per partition, everything delivered up to the last event acked (acks are cumulative). */
function coveredByAcks(delivered: readonly GroupEvent__Output[], acked: readonly GroupEvent__Output[]): Set<string> {
  const lastAcked = new Map<number, number>();
  const index = new Map(delivered.map((e, i) => [e.ackId, i]));
  for (const e of acked) lastAcked.set(e.partition, Math.max(lastAcked.get(e.partition) ?? -1, index.get(e.ackId)!));
  return new Set(delivered.filter((e, i) => i <= (lastAcked.get(e.partition) ?? -1)).map(key));
}

/** Waits until the group's stored checkpoints have passed every one of `acked`. */
async function untilDurable(group: string, acked: readonly { partition: number; shard: string; checkpoint: string }[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = (await sql.query<{ partition: number; checkpoint: string }>('SELECT partition, checkpoint FROM consumer_group_partitions WHERE group_name = $1', [group])).rows;
    const cp = new Map(rows.map((r) => [r.partition, cursorOf(r.checkpoint)]));
    const durable = acked.every((s) => {
      const pos = cursorOf(s.checkpoint).get(s.shard);
      return pos !== undefined && pos !== 'done' && hasPassed(cp.get(s.partition)!, s.shard, pos);
    });
    if (durable) return;
    if (Date.now() > deadline) throw new Error(`the acks of ${group} never became durable`);
    await sleep(20);
  }
}

/** Every stream's versions, in the order a member received them, are contiguous and increasing. */
function expectInOrder(events: readonly GroupEvent__Output[]): void {
  const last = new Map<string, number>();
  for (const e of events) {
    const v = Number(e.event!.version);
    const prev = last.get(e.event!.streamId);
    if (prev !== undefined) expect(v, `${e.event!.streamId} after version ${prev}`).toBe(prev + 1);
    last.set(e.event!.streamId, v);
  }
}

function expectAllDelivered(feeds: FakeFeeds, ids: readonly string[], delivered: Iterable<string>): void {
  const got = new Set(delivered);
  const missing: string[] = [];
  for (const s of ids) for (let v = 1; v <= feeds.committed().get(s)!; v++) if (!got.has(`${s}@${v}`)) missing.push(`${s}@${v}`);
  expect(missing).toEqual([]);
}

beforeAll(async () => {
  db = await createTestDatabase('sw_groups');
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
});

afterAll(async () => {
  for (const m of members) if (!m.isEnded) m.kill();
  for (const h of harnesses) await h.close().catch(() => {});
  await sql.end();
  await db.drop();
});

describe('ConsumerGroupService', () => {
  it("splits a group's partitions between two members, each stream going to one member, in order, once", async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const ids = streams(24, 'split');
    appendRounds(feeds, ids, 5);

    const a = member(router, 'split', { autoAck: true });
    await until('a has every event', () => a.events.length === 120);
    expect(a.partitions).toEqual([0, 1, 2, 3]);
    const b = member(router, 'split', { autoAck: true });
    await until('the partitions are split', () => a.partitions.length === 2 && b.partitions.length === 2);
    expect([...a.partitions, ...b.partitions].sort()).toEqual([0, 1, 2, 3]);
    const aBefore = a.events.length;

    appendRounds(feeds, ids, 5);
    await until('every event is delivered', () => a.events.length + b.events.length >= 240);
    await sleep(300);
    const all = [...a.events, ...b.events];
    expect(all.length).toBe(240);
    expect(new Set(all.map(key)).size).toBe(240);
    expectAllDelivered(feeds, ids, all.map(key));
    expectInOrder(a.events);
    expectInOrder(b.events);
    // After the split, each stream's events went only to its partition's owner.
    for (const e of a.events.slice(aBefore)) expect(a.partitions).toContain(partitionOf(e.event!.streamId, 4));
    for (const e of b.events) expect(b.partitions).toContain(partitionOf(e.event!.streamId, 4));
    expect(b.events.length).toBeGreaterThan(0);
    await Promise.all([a.leave(), b.leave()]);
  });

  it("hands a partition over only after its events were acknowledged, and a leaving member's partitions resume after its acks", async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const ids = streams(24, 'handover');
    appendRounds(feeds, ids, 5);

    const a = member(router, 'handover');
    await until('a has every event', () => a.events.length === 120);
    const b = member(router, 'handover', { autoAck: true });
    await until('b is assigned', () => b.assignments.length > 0);
    const moving = desiredPartitions([a.memberId!, b.memberId!], 4, b.memberId!);
    expect(moving.length).toBe(2);
    const ofMoving = a.events.filter((e) => moving.includes(e.partition));
    // Half of what must move is acknowledged: nothing moves yet.
    a.ack(ofMoving.slice(0, Math.floor(ofMoving.length / 2)));
    await sleep(500);
    expect(b.partitions).toEqual([]);
    expect(a.partitions).toEqual([0, 1, 2, 3]);
    // The rest acknowledged: they move at once (the handover wait is a minute), and nothing is sent again.
    a.ack(ofMoving);
    await until('b holds the moved partitions', () => b.partitions.length === 2);
    expect(b.partitions).toEqual(moving);
    await until('a gave them up', () => a.partitions.length === 2);

    appendRounds(feeds, ids, 1);
    const expectedForB = ids.filter((s) => moving.includes(partitionOf(s, 4))).length;
    await until('b has the new events of its partitions', () => b.events.length === expectedForB);
    await until('a has the new events of its partitions', () => a.events.length === 120 + ids.length - expectedForB);
    for (const e of b.events) expect(Number(e.event!.version)).toBe(6);

    // a acknowledges part of what it still holds, then leaves: b resumes right after those acks.
    const kept = a.events.filter((e) => !moving.includes(e.partition));
    const acked = kept.slice(0, Math.floor(kept.length / 2));
    a.ack(acked);
    const left = await a.leave();
    expect(left.code).toBe(grpc.status.OK);
    const covered = coveredByAcks(kept, acked);
    const expected = kept.map(key).filter((k) => !covered.has(k));
    await until('b holds every partition', () => b.partitions.length === 4);
    await until('b got what a had not acknowledged', () => b.events.length === expectedForB + expected.length);
    await sleep(300);
    const resumed = b.events.slice(expectedForB).map(key);
    expect(resumed.sort()).toEqual([...expected].sort());
    expectInOrder(b.events.filter((e) => !moving.includes(e.partition)));
    await b.leave();
  });

  it("gives a SIGKILLed member's partitions to another member, which resumes after its last acknowledgement", async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const ids = streams(30, 'kill');
    appendRounds(feeds, ids, 6);

    const ACK_LIMIT = 70;
    const child = await startProcess(
      'test/consumer-groups/support/member-process.ts',
      {
        ADDRESS: router.address,
        GROUP: 'kill',
        PARTITIONS: '4',
        ACK_LIMIT: String(ACK_LIMIT),
      },
      /member listening on (\S+)/,
    );
    type Seen = { stream: string; version: number; partition: number; shard: string; checkpoint: string; acked: boolean };
    const seen = (): Seen[] =>
      child
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Seen);
    await until('the member process has every event', () => seen().length === 180);
    // Kill it only once its acks are durable, so "its last acknowledgement" is known here.
    const acked = seen().filter((s) => s.acked);
    expect(acked.length).toBe(ACK_LIMIT);
    await untilDurable('kill', acked);
    child.signal('SIGKILL');
    await child.exited;

    const b = member(router, 'kill', { autoAck: true });
    const unacked = seen()
      .filter((s) => !s.acked)
      .map((s) => `${s.stream}@${s.version}`);
    await until('b got everything the killed member had not acknowledged', () => b.events.length >= unacked.length, 20_000);
    await sleep(300);
    // Redelivered: exactly what was past the last acknowledgement; nothing acknowledged comes again.
    expect(b.received().sort()).toEqual([...unacked].sort());
    expectInOrder(b.events);
    expect(b.partitions).toEqual([0, 1, 2, 3]);
    await b.leave();
  });

  it('resumes a group from its checkpoints after every router serving it restarted', async () => {
    const feeds = new FakeFeeds();
    const first = await startRouter(feeds);
    const ids = streams(20, 'restart');
    appendRounds(feeds, ids, 4);
    const a = member(first, 'restart');
    await until('a has every event', () => a.events.length === 80);
    const acked = a.events.slice(0, 50);
    a.ack(acked);
    await untilDurable(
      'restart',
      acked.map((e) => ({ partition: e.partition, shard: e.event!.shardId, checkpoint: e.event!.checkpoint })),
    );
    await first.close();
    const status = await a.ended;
    expect(status.code).toBe(grpc.status.UNAVAILABLE);

    appendRounds(feeds, ids, 1);
    const second = await startRouter(feeds);
    const b = member(second, 'restart', { autoAck: true });
    const covered = coveredByAcks(a.events, acked);
    const expected = a.events.map(key).filter((k) => !covered.has(k)).length + ids.length;
    await until('b resumed', () => b.events.length >= expected);
    await sleep(300);
    expect(b.events.length).toBe(expected);
    for (const e of b.events) expect(covered.has(key(e))).toBe(false);
    expectAllDelivered(feeds, ids, [...covered, ...b.received()]);
    expectInOrder(b.events);
    await b.leave();
  });

  it('waits for the leases of a router that died to expire, then resumes after the last checkpoint', async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const ids = streams(12, 'dead');
    appendRounds(feeds, ids, 3);
    const a = member(router, 'dead', { autoAck: true });
    await until('a has every event', () => a.events.length === 36);
    await a.leave();
    appendRounds(feeds, ids, 1);
    // What a router leaves behind when it is SIGKILLed: a live-looking member and its leases.
    await sql.query(`INSERT INTO consumer_group_members (group_name, member_id, member_name, expires_at) VALUES ('dead', 'ghost', 'ghost', now() + interval '3000 ms')`);
    await sql.query(`UPDATE consumer_group_partitions SET owner = 'ghost', lease_expires_at = now() + interval '3000 ms' WHERE group_name = 'dead'`);

    const b = member(router, 'dead', { autoAck: true });
    await until('b is assigned', () => b.assignments.length > 0);
    expect(b.partitions).toEqual([]);
    await until("the dead router's leases expired and b took them", () => b.partitions.length === 4, 20_000);
    await until('b has the events after the checkpoint', () => b.events.length >= 12);
    await sleep(300);
    expect(b.events.map((e) => Number(e.event!.version))).toEqual(Array(12).fill(4));
    await b.leave();
  });

  it("lets members on two routers share a group, and hands a leaving member's partitions to the other router's member", async () => {
    const feeds = new FakeFeeds();
    // Heartbeats too rare to matter here: the routers hear of each other by notification.
    const slow = { ...SETTINGS, leaseMs: 90_000, heartbeatMs: 30_000 };
    const [r1, r2] = [await startRouter(feeds, slow), await startRouter(feeds, slow)];
    const ids = streams(24, 'two-routers');
    appendRounds(feeds, ids, 3);
    const a = member(r1, 'two-routers', { autoAck: true, partitions: 8 });
    await until('a has every event', () => a.events.length === 72);
    const b = member(r2, 'two-routers', { autoAck: true, partitions: 8 });
    await until('the partitions are split across the routers', () => a.partitions.length === 4 && b.partitions.length === 4, 10_000);
    expect([...a.partitions, ...b.partitions].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    appendRounds(feeds, ids, 2);
    await until('the new events are delivered', () => a.events.length + b.events.length === 120);
    for (const e of b.events) expect(b.partitions).toContain(e.partition);

    a.autoAck = false;
    appendRounds(feeds, ids, 1);
    await until('a has its share of the last round', () => a.events.length + b.events.length === 144);
    const before = b.events.length;
    const aUnacked = a.events.filter((e) => Number(e.event!.version) === 6).map(key);
    await a.leave();
    await until('b holds every partition', () => b.partitions.length === 8, 10_000);
    await until('b got what a had not acknowledged', () => b.events.length === before + aUnacked.length);
    await sleep(300);
    expect(b.received().slice(before).sort()).toEqual([...aUnacked].sort());
    expectAllDelivered(feeds, ids, [...a.received(), ...b.received()]);
    await b.leave();
  });

  it('sends a member no more than max_unacked unacknowledged events, and more as acks come', async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    appendRounds(feeds, streams(10, 'bounded'), 5);
    const a = member(router, 'bounded', { maxUnacked: 7, metadata: { authorization: 'Bearer reader-a' } });
    await until('a has its first events', () => a.events.length === 7);
    // Its events are read with its own credentials.
    expect(feeds.lastAuthorization).toBe('Bearer reader-a');
    await sleep(300);
    expect(a.events.length).toBe(7);
    a.ack([a.events[0]!]);
    await until('one more came', () => a.events.length === 8);
    await sleep(300);
    // The first event delivered has nothing before it in its partition: its ack frees exactly one place.
    expect(a.events.length).toBe(8);
    a.ackAll();
    await until('the rest came', () => a.events.length >= 13);
    a.autoAck = true;
    a.ackAll();
    await until('everything came', () => a.events.length === 50);
    expectInOrder(a.events);
    await a.leave();
  });

  it('lets go of a lease the database gives a member that does not serve it, and the member that should have it gets it back', async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    appendRounds(feeds, streams(12, 'stray'), 2);
    const a = member(router, 'stray', { autoAck: true });
    const b = member(router, 'stray', { autoAck: true });
    await until('the partitions are split', () => a.partitions.length === 2 && b.partitions.length === 2);
    const p = b.partitions[0]!;
    const seenByA = a.assignments.length;
    // The database says a holds b's partition (as after an acquire whose answer a never got).
    await sql.query(`UPDATE consumer_group_partitions SET owner = $1 WHERE group_name = 'stray' AND partition = $2`, [a.memberId, p]);
    const owner = async () => (await sql.query(`SELECT owner FROM consumer_group_partitions WHERE group_name = 'stray' AND partition = $1`, [p])).rows[0].owner as string;
    let back = false;
    await until('b holds it again', () => {
      void owner().then((o) => (back = o === b.memberId));
      return back;
    });
    // a never served it: no two members deliver one partition at once.
    expect(a.assignments.slice(seenByA).some((x) => x.partitions.includes(p))).toBe(false);
    expect(b.partitions).toContain(p);
    await Promise.all([a.leave(), b.leave()]);
  });

  it("reports each group's lag in events and seconds", async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const ids = streams(10, 'lag');
    appendRounds(feeds, ids, 3);
    const a = member(router, 'lag');
    await until('a has every event', () => a.events.length === 30);
    await sleep(50);
    const read = async (name: string) => (await router.registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.group === 'lag')?.value;
    await router.groups.sampleLag();
    expect(await read('shardwrite_router_consumer_group_lag_events')).toBeGreaterThan(0);
    expect(await read('shardwrite_router_consumer_group_lag_seconds')).toBeGreaterThan(0);
    expect(await read('shardwrite_router_consumer_group_members')).toBe(1);
    a.ackAll();
    await sleep(300);
    await router.groups.sampleLag();
    expect(await read('shardwrite_router_consumer_group_lag_events')).toBe(0);
    expect(await read('shardwrite_router_consumer_group_lag_seconds')).toBe(0);
    await a.leave();
  });

  it("refuses a bad join: a malformed name, filters other than the group's, unknown types", async () => {
    const feeds = new FakeFeeds();
    const router = await startRouter(feeds);
    const first = member(router, 'filters');
    await until('first is assigned', () => first.assignments.length > 0);
    const other = new TestMember(router.address, { group: 'filters', aggregateTypes: ['order-lines'] });
    members.push(other);
    const mismatch = await other.ended;
    expect(mismatch.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(mismatch.reason).toBe('GROUP_MISMATCH');
    const badName = new TestMember(router.address, { group: 'no spaces' });
    members.push(badName);
    expect((await badName.ended).code).toBe(grpc.status.INVALID_ARGUMENT);
    const unknown = new TestMember(router.address, { group: 'unknown-types', aggregateTypes: ['unknown'] });
    members.push(unknown);
    expect((await unknown.ended).code).toBe(grpc.status.INVALID_ARGUMENT);
    await first.leave();
  });
});

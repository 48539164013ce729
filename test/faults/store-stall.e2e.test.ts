/**
 * Fault 5: the connection between a shard and its PostgreSQL stalls. A
 * test-only TCP proxy sits between them; it first holds all traffic for a
 * while (then delivers it), later swallows it for good on the open
 * connections (a black hole), and then forwards again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, type Attempt, type CommandRecord } from '../support/ledger.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { breakerLog, expectIntact, expectRetriesSettled, loadOptions, onShard, phases, settle, whenInFlight, type Finished } from './support/scenario.js';

const STORE_BOUNDS = {
  STORE_CALL_TIMEOUT_MS: '500',
  STORE_BREAKER_RESET_MS: '500',
  DB_STATEMENT_TIMEOUT_MS: '1000',
  LOAD_TIMEOUT_MS: '500',
};
const DEADLINE_MS = 2000;

describe('a stalled connection between a shard and its PostgreSQL', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let cluster: Cluster;
  let result: Finished;
  const marks: Record<string, number> = {};
  const struck: string[] = [];
  const victimId = 'shard-0';
  const victim = (c: CommandRecord) => c.shard === victimId;

  beforeAll(async () => {
    db = await createTestDatabase('sw_stall');
    const target = new URL(db.url);
    proxy = await startTcpProxy(`${target.hostname}:${target.port || '5432'}`);
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    cluster = await startCluster({
      shards: 3,
      databaseUrl: (i) => (i === 0 ? viaProxy.toString() : undefined),
      shardEnv: (i) => (i === 0 ? STORE_BOUNDS : {}),
    });
    const p = phases(8, { before: 2, fault: 3, after: 3 });
    // Only the victim's callers may see errors, and only "outcome unknown" ones.
    const run = startLoad(loadOptions(cluster, 'stall', { deadlineMs: DEADLINE_MS, expect: onShard(victimId, 'UNAVAILABLE/STORE_UNAVAILABLE', 'DEADLINE_EXCEEDED') }));
    const logFrom = cluster.shards[0]!.process.output().length;

    await sleep(p.before);
    struck.push(...(await whenInFlight(run.ledger, (s) => s === victimId)));
    marks.pauseAt = run.ledger.mark('pause-start');
    proxy.pause();
    await sleep(p.fault);
    proxy.resume();
    marks.pauseEnd = run.ledger.mark('pause-end');
    await sleep(p.after);

    struck.push(...(await whenInFlight(run.ledger, (s) => s === victimId)));
    marks.holeAt = run.ledger.mark('blackhole-start');
    proxy.blackhole();
    await sleep(p.fault);
    proxy.resume();
    marks.holeEnd = run.ledger.mark('blackhole-end');
    await sleep(p.after);

    const breaker = breakerLog(cluster.shards[0]!.process.output().slice(logFrom));
    result = await settle('5 store connection stall (pause, then black hole)', cluster, run, (l) => ({
      'in-flight-at-stalls': struck.length,
      'paused-ms': marks.pauseEnd! - marks.pauseAt!,
      'blackholed-ms': marks.holeEnd! - marks.holeAt!,
      'victim-codes': JSON.stringify(l.codes((c) => victim(c))),
      'slowest-ms': l.slowest().ms,
      'over-deadline-ms': l.slowest().overDeadlineMs,
      breaker: breaker.map((t) => t.state).join('>') || 'never-changed',
      'recovery-after-pause-ms': l.recoveryMs(marks.pauseEnd!, (s) => s === victimId),
      'recovery-after-blackhole-ms': l.recoveryMs(marks.holeEnd!, (s) => s === victimId),
    }));
  }, 240_000);

  afterAll(async () => {
    proxy?.resume();
    await cluster?.close();
    await proxy?.close();
    await db?.drop();
  });

  it('loses nothing acknowledged and duplicates nothing', () => {
    expectIntact(result, cluster);
    expect(result.ledger.states().unknown).toBe(0);
  });

  it('struck commands in flight, and settled them by retries, one of which found its command committed', () => {
    expectRetriesSettled(result, struck);
  });

  it('keeps every deadline while the connection stalls, and the other shards never notice', () => {
    expect(result.ledger.slowest().overDeadlineMs).toBeLessThan(1000);
    const stalled = (c: CommandRecord, a: Attempt) => victim(c) && ((a.sentAt >= marks.pauseAt! && a.sentAt < marks.pauseEnd!) || (a.sentAt >= marks.holeAt! && a.sentAt < marks.holeEnd!));
    expect(result.ledger.errorCount(stalled)).toBeGreaterThan(0);
    expect(result.ledger.errors((c) => !victim(c))).toEqual({});
  });

  it('recovers by itself after each stall', () => {
    const after = (from: number) => result.ledger.acksBetween(from, Infinity, (s) => s === victimId).length;
    expect(result.ledger.recoveryMs(marks.pauseEnd!, (s) => s === victimId)).toBeDefined();
    expect(result.ledger.recoveryMs(marks.holeEnd!, (s) => s === victimId)).toBeDefined();
    expect(after(marks.holeEnd!)).toBeGreaterThan(0);
  });
});

/**
 * Fault 2: a shard's PostgreSQL is frozen with SIGSTOP for several seconds
 * under load, then thawed with SIGCONT. The scenario runs once; each `it`
 * asserts one of its promises.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, type Attempt, type CommandRecord } from '../support/ledger.js';
import { startOwnPostgres, type OwnPostgres } from '../support/postgres-process.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { breakerLog, expectIntact, expectRetriesSettled, loadOptions, onShard, phases, settle, whenInFlight, type Finished } from './support/scenario.js';

/** Tight store bounds on the frozen shard, so the breaker can react within the scenario. */
const STORE_BOUNDS = {
  STORE_CALL_TIMEOUT_MS: '500',
  STORE_BREAKER_RESET_MS: '500',
  DB_STATEMENT_TIMEOUT_MS: '1000',
  LOAD_TIMEOUT_MS: '500',
};
const DEADLINE_MS = 2000;

describe("a shard's PostgreSQL frozen with SIGSTOP for several seconds under load", () => {
  let own: OwnPostgres;
  let cluster: Cluster;
  let result: Finished;
  let frozenAt: number;
  let thawedAt: number;
  let breaker: { state: string; at: number }[];
  let struck: string[];
  const victimId = 'shard-0';
  const whileFrozen = (c: CommandRecord, a: Attempt) => c.shard === victimId && a.sentAt >= frozenAt && a.sentAt < thawedAt;

  beforeAll(async () => {
    own = await startOwnPostgres();
    cluster = await startCluster({
      shards: 3,
      databaseUrl: (i) => (i === 0 ? own.url : undefined),
      shardEnv: (i) => (i === 0 ? STORE_BOUNDS : {}),
    });
    const p = phases(12, { before: 3, fault: 4, after: 5 });
    const victim = cluster.shards[0]!;
    // Only the victim's callers may see errors, and only "outcome unknown" ones.
    const run = startLoad(loadOptions(cluster, 'freeze', { deadlineMs: DEADLINE_MS, expect: onShard(victimId, 'UNAVAILABLE/STORE_UNAVAILABLE', 'DEADLINE_EXCEEDED') }));

    await sleep(p.before);
    const logFrom = victim.process.output().length;
    struck = await whenInFlight(run.ledger, (s) => s === victimId);
    frozenAt = run.ledger.mark('fault-start');
    own.signal('SIGSTOP');
    try {
      await sleep(p.fault);
    } finally {
      own.signal('SIGCONT');
    }
    thawedAt = run.ledger.mark('fault-end');
    await sleep(p.after);

    breaker = breakerLog(victim.process.output().slice(logFrom));
    const opened = breaker.find((t) => t.state === 'open');
    result = await settle('2 store SIGSTOP', cluster, run, (l) => ({
      'in-flight-at-freeze': struck.length,
      'frozen-ms': thawedAt - frozenAt,
      'victim-codes-while-frozen': JSON.stringify(l.codes(whileFrozen)),
      'slowest-ms': l.slowest().ms,
      'over-deadline-ms': l.slowest().overDeadlineMs,
      breaker: breaker.map((t) => t.state).join('>') || 'never-changed',
      'breaker-opened-after-ms': opened ? opened.at - frozenAt : undefined,
      'recovery-ms': l.recoveryMs(thawedAt, (s) => s === victimId),
    }));
  }, 240_000);

  afterAll(async () => {
    own?.signal('SIGCONT');
    await cluster?.close();
    await own?.stop();
  });

  it('loses nothing acknowledged and duplicates nothing', () => {
    expectIntact(result, cluster);
    expect(result.ledger.states().unknown).toBe(0);
  });

  it('struck commands in flight, and settled them by retries, one of which found its command committed', () => {
    expectRetriesSettled(result, struck);
  });

  it('answers every call within its deadline, and the other shards never notice', () => {
    expect(result.ledger.slowest().overDeadlineMs).toBeLessThan(1000);
    expect(result.ledger.codes(whileFrozen)['UNAVAILABLE/STORE_UNAVAILABLE'] ?? 0).toBeGreaterThan(0);
    expect(result.ledger.errors((c) => c.shard !== victimId)).toEqual({});
  });

  it('serves again by itself after SIGCONT', () => {
    expect(result.ledger.recoveryMs(thawedAt, (s) => s === victimId)).toBeDefined();
  });

  it('opens its PostgreSQL breaker while the database is frozen, and closes it after SIGCONT', () => {
    const states = breaker.map((t) => t.state);
    expect(states, 'breaker transitions logged by the shard').toContain('open');
    expect(breaker.find((t) => t.state === 'open')!.at).toBeLessThan(thawedAt);
    expect(states[states.length - 1]).toBe('closed');
  });
});

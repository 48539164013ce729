/**
 * Fault 7: a shard's PostgreSQL crashes under load — the postmaster and every
 * backend SIGKILLed at once, on a server of the scenario's own — and is
 * started again on the same data directory, so it replays its WAL. Every
 * command acknowledged before the crash was durable (I1: acknowledged only
 * after `synchronous_commit=on` committed it), so none may be missing after
 * the recovery. The scenario runs once; each `it` asserts one of its promises.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, type Attempt, type CommandRecord } from '../support/ledger.js';
import { startOwnPostgres, type OwnPostgres } from '../support/postgres-process.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { expectIntact, inFlightAt, inFlightFigures, loadOptions, onShard, phases, settle, whenInFlight, type Finished } from './support/scenario.js';

/** Tight store bounds on the victim, so its breaker reacts within the scenario. */
const STORE_BOUNDS = {
  STORE_CALL_TIMEOUT_MS: '500',
  STORE_BREAKER_RESET_MS: '500',
  DB_STATEMENT_TIMEOUT_MS: '1000',
  LOAD_TIMEOUT_MS: '500',
};
const DEADLINE_MS = 2000;
/** How long answers already on their way are given to arrive after the freeze. */
const IN_TRANSIT_MS = 100;

describe("a shard's PostgreSQL killed with SIGKILL under load, then restarted", () => {
  let own: OwnPostgres;
  let cluster: Cluster;
  let result: Finished;
  let struck: string[];
  let crashedAt: number;
  let upAt: number;
  let ackedBeforeCrash: string[];
  const victimId = 'shard-0';
  const victim = (c: CommandRecord) => c.shard === victimId;

  beforeAll(async () => {
    own = await startOwnPostgres();
    cluster = await startCluster({
      shards: 3,
      databaseUrl: (i) => (i === 0 ? own.url : undefined),
      shardEnv: (i) => (i === 0 ? STORE_BOUNDS : {}),
    });
    const p = phases(12, { before: 3, fault: 3, after: 6 });
    // Only the victim's callers may see errors, and only "outcome unknown" ones.
    const run = startLoad(loadOptions(cluster, 'crash', { deadlineMs: DEADLINE_MS, expect: onShard(victimId, 'UNAVAILABLE/STORE_UNAVAILABLE', 'DEADLINE_EXCEEDED') }));

    await sleep(p.before);
    // Crash while commands are in flight on the victim: freeze its server, and if a command sent before the
    // freeze is still waiting a moment later (its commit cannot have been answered), kill the frozen server.
    const onVictim = (s: string | undefined) => s === victimId;
    for (let tries = 0; ; tries++) {
      await whenInFlight(run.ledger, onVictim);
      own.signal('SIGSTOP');
      const frozenAt = Date.now();
      await sleep(IN_TRANSIT_MS);
      struck = [...run.ledger.inFlight].filter(([id, sentAt]) => sentAt < frozenAt && onVictim(run.ledger.commands.get(id)?.shard)).map(([id]) => id);
      if (struck.length > 0 || tries >= 40) {
        crashedAt = run.ledger.mark('fault-start', frozenAt);
        break;
      }
      own.signal('SIGCONT');
      await sleep(50 + Math.random() * 250);
    }
    await own.crash();
    ackedBeforeCrash = run.ledger.acks.filter((a) => a.at <= crashedAt && cluster.ownerOf(a.orderId) === victimId).map((a) => a.commandId);
    await sleep(p.fault);
    await own.restart();
    upAt = run.ledger.mark('fault-end');
    await sleep(p.after);

    result = await settle('7 store SIGKILL + restart', cluster, run, (l) => ({
      'in-flight-at-crash': inFlightFigures(inFlightAt(l, crashedAt, victimId)),
      'acked-on-victim-before-crash': ackedBeforeCrash.length,
      'down-ms': upAt - crashedAt,
      'victim-codes-while-down': JSON.stringify(l.codes((c: CommandRecord, a: Attempt) => victim(c) && a.sentAt >= crashedAt && a.sentAt < upAt)),
      'slowest-ms': l.slowest().ms,
      'recovery-ms': l.recoveryMs(upAt, (s) => s === victimId),
    }));
  }, 240_000);

  afterAll(async () => {
    await cluster?.close();
    await own?.stop();
  });

  it('loses nothing it acknowledged before the crash, and duplicates nothing', () => {
    expect(struck.length, 'commands in flight on the victim when its database died').toBeGreaterThan(0);
    // The crash cut commands in flight, and their retries settled each by its command id.
    const cut = inFlightAt(result.ledger, crashedAt, victimId);
    expect(cut.length, 'commands in flight on the victim at the crash').toBeGreaterThan(0);
    expect(cut.filter((c) => c.committed === undefined)).toEqual([]);
    expect(ackedBeforeCrash.length).toBeGreaterThan(0);
    expectIntact(result, cluster);
    expect(result.ledger.states().unknown).toBe(0);
  });

  it('refuses commands while its database is down, and the other shards never notice', () => {
    const whileDown = (c: CommandRecord, a: Attempt) => victim(c) && a.sentAt >= crashedAt && a.sentAt < upAt;
    expect(result.ledger.codes(whileDown)['UNAVAILABLE/STORE_UNAVAILABLE'] ?? 0).toBeGreaterThan(0);
    expect(result.ledger.errors((c) => !victim(c))).toEqual({});
  });

  it('serves again by itself once its database is back', () => {
    expect(result.ledger.recoveryMs(upAt, (s) => s === victimId)).toBeDefined();
    expect(result.ledger.acksBetween(upAt, Infinity, (s) => s === victimId).length).toBeGreaterThan(0);
  });
});

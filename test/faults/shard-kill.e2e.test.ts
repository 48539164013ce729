/**
 * Fault 1: a shard is killed with SIGKILL in the middle of load and started
 * again on the same address and database. It is killed at a moment when it
 * holds a command already committed whose answer has not left it (frozen
 * with SIGSTOP until the store shows one, then killed), so a retry must
 * answer `duplicate`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad } from '../support/ledger.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { expectRetriesSettled, finish, freezeWithCommittedInFlight, inFlightAt, inFlightFigures, loadOptions, longestGap, onShard, phases } from './support/scenario.js';

describe('a shard killed with SIGKILL under load, then restarted', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ shards: 3 });
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
  });

  it('loses nothing acknowledged, settles every in-flight command by its command id, and the other shards keep serving', async () => {
    const p = phases(12, { before: 3, fault: 3, after: 6 });
    const victim = cluster.shards[1]!;
    const others = (shard: string | undefined) => shard !== undefined && shard !== victim.id;
    // Only the killed shard's callers may see errors, and only "outcome unknown" ones.
    const run = startLoad(loadOptions(cluster, 'kill', { expect: onShard(victim.id, 'UNAVAILABLE/SHARD_UNAVAILABLE', 'DEADLINE_EXCEEDED') }));

    await sleep(p.before);
    // Kill while the victim has commands in flight, one of them committed but not yet answered, so their fate is tested.
    const struck = await freezeWithCommittedInFlight(run.ledger, cluster.stores(), victim.process, (shard) => shard === victim.id);
    const killedAt = run.ledger.mark('fault-start');
    victim.process.signal('SIGKILL');
    await victim.process.exited;
    await sleep(p.fault);
    await victim.restart();
    const upAt = run.ledger.mark('fault-end');
    await sleep(p.after);

    const finished = await finish('1 shard SIGKILL + restart', cluster, run, (l) => ({
      'in-flight-at-kill': inFlightFigures(inFlightAt(l, killedAt, victim.id)),
      'committed-unanswered-at-kill': struck.committed.length,
      'down-ms': upAt - killedAt,
      'recovery-ms': l.recoveryMs(upAt, (s) => s === victim.id),
      'other-shards-acks-while-down': l.acksBetween(killedAt, upAt, others).length,
      'other-shards-longest-gap-ms': longestGap(
        l.acksBetween(killedAt, upAt, others).map((a) => a.at),
        killedAt,
        upAt,
      ),
    }));

    const { ledger } = finished;
    expectRetriesSettled(finished, struck.inFlight);
    // The ones committed but unanswered at the kill were answered duplicate by their retry.
    expect(struck.committed.length).toBeGreaterThan(0);
    for (const id of struck.committed) expect(ledger.commands.get(id)?.ack?.duplicate, id).toBe(true);
    // Every command that was in flight on the killed shard was settled by a retry with its command id:
    // either it had committed (the retry said duplicate) or it had not (the retry applied it). None is left unknown.
    const inFlight = inFlightAt(ledger, killedAt, victim.id);
    expect(inFlight.filter((c) => c.committed === undefined)).toEqual([]);
    expect(ledger.states().unknown).toBe(0);
    // The killed shard serves again after its restart.
    expect(ledger.recoveryMs(upAt, (s) => s === victim.id)).toBeDefined();
    // The other shards' aggregates kept succeeding the whole time: no error at all, and acks all through the outage.
    expect(ledger.errors((c) => others(c.shard))).toEqual({});
    const otherAcks = ledger.acksBetween(killedAt, upAt, others).map((a) => a.at);
    expect(otherAcks.length).toBeGreaterThan(0);
    // Never stalled for the whole outage. (How often they ack meanwhile depends on the load, not on the
    // service: the ledger's callers send one command at a time and pile up retrying the dead shard's
    // orders, so a tighter bound on the gap measured the load model and failed on a busy 2-core run;
    // test/faults/router-flood.e2e.test.ts holds the other shards to a share of their rate.)
    expect(longestGap(otherAcks, killedAt, upAt)).toBeLessThan(upAt - killedAt);
  }, 180_000);
});

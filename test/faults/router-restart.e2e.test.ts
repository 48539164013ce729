/**
 * Fault 4: the router is killed with SIGKILL under load and started again on
 * the same address — at a moment when it holds a shard's answer to a
 * committed command that its caller has not heard (frozen with SIGSTOP until
 * a store shows one, then killed), so a retry must answer `duplicate`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad } from '../support/ledger.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { expectIntact, expectRetriesSettled, freezeWithCommittedInFlight, loadOptions, phases, settle, type Finished } from './support/scenario.js';

describe('the router killed with SIGKILL under load, then restarted', () => {
  let cluster: Cluster;
  let result: Finished;
  let killedAt: number;
  let upAt: number;
  let struck: { inFlight: string[]; committed: string[] };

  beforeAll(async () => {
    cluster = await startCluster({ shards: 3 });
    const p = phases(10, { before: 3, fault: 2, after: 5 });
    // While the router is away callers may only hear "unavailable".
    const run = startLoad(loadOptions(cluster, 'router', { expect: ['UNAVAILABLE'] }));

    await sleep(p.before);
    struck = await freezeWithCommittedInFlight(run.ledger, cluster.stores(), cluster.router, () => true);
    killedAt = run.ledger.mark('fault-start');
    cluster.router.signal('SIGKILL');
    await cluster.router.exited;
    await sleep(p.fault);
    await cluster.restartRouter();
    upAt = run.ledger.mark('fault-end');
    await sleep(p.after);

    result = await settle('4 router SIGKILL + restart', cluster, run, (l) => ({
      'down-ms': upAt - killedAt,
      'in-flight-at-kill': [...l.commands.values()].filter((c) => c.attempts.some((a) => a.sentAt <= killedAt && a.sentAt + a.ms >= killedAt && a.code !== 'OK')).length,
      'committed-unanswered-at-kill': struck.committed.length,
      'recovery-ms': l.recoveryMs(upAt),
    }));
  }, 240_000);

  afterAll(async () => {
    await cluster?.close();
  });

  it('loses nothing acknowledged and duplicates nothing', () => {
    expectIntact(result, cluster);
  });

  it('clients reconnect to the restarted router and every command is settled by its command id', () => {
    expect(result.ledger.recoveryMs(upAt)).toBeDefined();
    expect(result.ledger.acksBetween(upAt, Infinity).length).toBeGreaterThan(0);
    expect(result.ledger.states().unknown).toBe(0);
    expectRetriesSettled(result, struck.inFlight);
    for (const id of struck.committed) expect(result.ledger.commands.get(id)?.ack?.duplicate, id).toBe(true);
    // While the router was away callers saw only UNAVAILABLE (never an answer that something failed).
    expect(Object.keys(result.ledger.errors())).toEqual(['UNAVAILABLE']);
  });
});

/**
 * Fault 7: the router under attack while a shard is stalled. A ledger load of
 * 64 callers runs, half of them on the victim shard's orders and half on the
 * others' (so a caller waiting on the victim never holds back the others'
 * rate: that measured the load model, not the router); one shard is paused (SIGSTOP; 10 s under
 * `npm run test:faults`, shorter in `npm test`) while one client opens 64
 * command streams sending 256 KB commands without ever reading an outcome,
 * plus 256 concurrent unary calls with 256 KB bodies (`support/flood.ts`).
 * The router must stay within the memory its Kubernetes manifest gives it,
 * the other shards' commands must keep flowing, and nothing acknowledged may
 * be lost.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startLoad, type Ledger } from '../support/ledger.js';
import { startFlood, type FloodFigures } from './support/flood.js';
import { expectIntact, loadOptions, onShard, phases, settle, sleep, type Finished } from './support/scenario.js';

const CALLERS = 64;
const STREAMS = 64;
const UNARY = 256;
const BODY_BYTES = 256 * 1024;
const MAX_PAUSE_MS = 10_000;
const victimId = 'shard-0';

/** The router container's memory limit in k8s/base, in KiB. */
function routerLimitKiB(): number {
  const text = readFileSync(resolve(import.meta.dirname, '../../k8s/base/router/deployment.yaml'), 'utf8');
  const deployment = parseAllDocuments(text)
    .map((d) => d.toJS())
    .find((d) => d?.kind === 'Deployment');
  const container = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === 'router');
  const m = /^(\d+)(Mi|Gi)$/.exec(String(container.resources.limits.memory));
  if (!m) throw new Error(`unexpected router memory limit ${container.resources.limits.memory}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 * 1024 : 1024);
}

/** Samples a process's resident memory (VmRSS) until stopped; returns the highest, in KiB. */
function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let max = 0;
  const read = () => {
    try {
      max = Math.max(max, Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0));
    } catch {
      // The process is gone: the test sees it as dead.
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return max;
    },
  };
}

/** Acknowledgements per second, in [from, to), of commands for the shards that were not paused. */
function othersRate(ledger: Ledger, from: number, to: number): number {
  return ledger.acksBetween(from, to, (s) => s !== victimId).length / ((to - from) / 1000);
}

describe('a router flooded by one client while a shard is paused', () => {
  let cluster: Cluster;
  let result: Finished;
  let victimResult: Finished;
  let flood: FloodFigures;
  let rssBeforeKiB: number;
  let rssMaxKiB: number;
  const marks: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await startCluster({ shards: 3 });
    const p = phases(14, { before: 5, fault: 6, after: 3 });
    const pauseMs = Math.min(p.fault, MAX_PAUSE_MS);
    const onVictim = (orderId: string) => cluster.ownerOf(orderId) === victimId;
    // The others' callers: every answer must be OK.
    const run = startLoad(loadOptions(cluster, 'flood', { clients: CALLERS / 2, orderFilter: (id) => !onVictim(id) }));
    // The paused shard's callers may see errors: it is unreachable (or found stalled), or their deadline passes.
    const victimRun = startLoad(loadOptions(cluster, 'flood-victim', { clients: CALLERS / 2, orderFilter: onVictim, expect: onShard(victimId, 'UNAVAILABLE/SHARD_UNAVAILABLE', 'DEADLINE_EXCEEDED') }));
    const victim = cluster.shard(victimId);

    // The first second warms the callers' connections up; the rest of the phase is the baseline.
    await sleep(Math.min(1000, p.before / 4));
    marks.baselineFrom = run.ledger.mark('baseline');
    await sleep(p.before - Math.min(1000, p.before / 4));
    rssBeforeKiB = sampleRss(cluster.router.pid).stop();

    const rss = sampleRss(cluster.router.pid);
    await victimRun.ledger.untilInFlight((s) => s === victimId);
    marks.attackFrom = run.ledger.mark('attack-start');
    victim.process.signal('SIGSTOP');
    const attack = startFlood(cluster.routerAddress, { streams: STREAMS, unary: UNARY, bodyBytes: BODY_BYTES, prefix: `atk-${Date.now()}` });
    try {
      await sleep(pauseMs);
    } finally {
      victim.process.signal('SIGCONT');
    }
    marks.resumed = run.ledger.mark('resumed');
    await sleep(p.fault - pauseMs);
    flood = await attack.stop();
    marks.attackTo = run.ledger.mark('attack-end');
    rssMaxKiB = rss.stop();
    await sleep(p.after);

    // Both loads stop before either is checked: a store read while the other still writes is no proof.
    await Promise.all([run.stop(), victimRun.stop()]);
    result = await settle('7 router flood with a paused shard', cluster, run, (l) => ({
      'paused-ms': marks.resumed! - marks.attackFrom!,
      'router-rss-mib': `${Math.round(rssBeforeKiB / 1024)}>${Math.round(rssMaxKiB / 1024)}`,
      'others-per-s': `${othersRate(l, marks.baselineFrom!, marks.attackFrom!).toFixed(0)}>${othersRate(l, marks.attackFrom!, marks.attackTo!).toFixed(0)}`,
      'flood-unary': JSON.stringify(flood.unary),
      'flood-stream-writes': flood.streamWrites,
    }));
    victimResult = await settle('7 router flood with a paused shard (its callers)', cluster, victimRun, (l) => ({
      'victim-codes': JSON.stringify(l.codes((c) => c.shard === victimId)),
    }));
  }, 300_000);

  afterAll(async () => {
    await cluster?.close();
  });

  it('keeps the router under the memory limit its Kubernetes manifest gives it', () => {
    expect(rssMaxKiB).toBeLessThan(routerLimitKiB());
  });

  it('keeps the other shards serving at least half their rate before the attack', () => {
    const before = othersRate(result.ledger, marks.baselineFrom!, marks.attackFrom!);
    const during = othersRate(result.ledger, marks.attackFrom!, marks.attackTo!);
    expect(before).toBeGreaterThan(0);
    expect(during / before).toBeGreaterThanOrEqual(1 / 2);
  });

  it('loses nothing acknowledged and duplicates nothing', () => {
    expectIntact(result, cluster);
    expectIntact(victimResult, cluster);
  });
});

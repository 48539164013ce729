/**
 * What every fault scenario shares: load sizing (short in `npm test`, longer
 * with FAULTS_SECONDS), stopping the load and proving its ledger against the
 * stores, and the one summary line per scenario.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { checkStores, type CheckResult } from '../../support/checker.js';
import { summaryLine, type Ledger, type LoadOptions, type LoadRun } from '../../support/ledger.js';
import type { Cluster } from '../../support/cluster.js';

/**
 * The phases of a scenario, in ms: load before the fault, the fault itself,
 * load after it. `npm test` uses `shortSeconds` in total; FAULTS_SECONDS=N
 * stretches every phase in proportion.
 */
export function phases(shortSeconds: number, shares: { before: number; fault: number; after: number }): { before: number; fault: number; after: number; total: number } {
  const total = faultSeconds(shortSeconds) * 1000;
  const sum = shares.before + shares.fault + shares.after;
  return {
    before: Math.round((total * shares.before) / sum),
    fault: Math.round((total * shares.fault) / sum),
    after: Math.round((total * shares.after) / sum),
    total,
  };
}

/** Load options shared by the scenarios; FAULTS_CLIENTS overrides the number of clients. */
export function loadOptions(cluster: Cluster, name: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  const clients = Number(process.env.FAULTS_CLIENTS) || 12;
  return {
    target: cluster.routerAddress,
    prefix: `${name}-${randomBytes(3).toString('hex')}`,
    clients,
    ordersPerClient: 6,
    deadlineMs: 3000,
    ownerOf: cluster.ownerOf,
    ...extra,
  };
}

export interface Finished {
  readonly ledger: Ledger;
  readonly check: CheckResult;
}

/**
 * Stops the load (its unknown outcomes are retried for a while), proves the
 * ledger against every shard's store and prints the scenario's summary line.
 * Asserts nothing: see `expectIntact`.
 */
export async function settle(
  name: string,
  cluster: Cluster,
  run: LoadRun,
  extra: (ledger: Ledger) => Record<string, string | number | undefined> = () => ({}),
): Promise<Finished> {
  const ledger = await run.stop();
  const check = await checkStores(cluster.stores(), ledger);
  console.log(summaryLine(name, ledger, check, extra(ledger)));
  return { ledger, check };
}

/** What every scenario must end with: nothing lost, nothing duplicated, no other violation, every process running. */
export function expectIntact(finished: Finished, cluster: Cluster): void {
  const { check } = finished;
  expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
  expect(check.lost).toBe(0);
  expect(check.duplicated).toBe(0);
  expect(cluster.dead()).toEqual([]);
}

/** `settle`, then `expectIntact`. */
export async function finish(
  name: string,
  cluster: Cluster,
  run: LoadRun,
  extra: (ledger: Ledger) => Record<string, string | number | undefined> = () => ({}),
): Promise<Finished> {
  const finished = await settle(name, cluster, run, extra);
  expectIntact(finished, cluster);
  return finished;
}

/** The longest stretch in [from, to) without any of `times` (ms). */
export function longestGap(times: readonly number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t < to).sort((a, b) => a - b);
  let last = from;
  let gap = 0;
  for (const t of inside) {
    gap = Math.max(gap, t - last);
    last = t;
  }
  return Math.max(gap, to - last);
}

/** Commands of `shard` that were waiting for an answer at `at` and got an unknown outcome. */
export function inFlightAt(ledger: Ledger, at: number, shard: string): { commandId: string; committed: boolean | undefined }[] {
  const out: { commandId: string; committed: boolean | undefined }[] = [];
  for (const c of ledger.commands.values()) {
    if (c.shard !== shard) continue;
    const hit = c.attempts.find((a) => a.sentAt <= at && a.sentAt + a.ms >= at && a.code !== 'OK');
    if (!hit) continue;
    out.push({ commandId: c.commandId, committed: c.state === 'acked' ? c.ack!.duplicate : undefined });
  }
  return out;
}

/** Figures for the summary line: how in-flight commands ended. */
export function inFlightFigures(list: readonly { committed: boolean | undefined }[]): string {
  const committed = list.filter((c) => c.committed === true).length;
  const not = list.filter((c) => c.committed === false).length;
  const open = list.filter((c) => c.committed === undefined).length;
  return `${list.length}(committed-then-dup=${committed},not-committed=${not},unresolved=${open})`;
}

/** The store breaker's state changes a shard logged (pino JSON lines), in order, with their times. */
export function breakerLog(output: string): { state: string; at: number }[] {
  const out: { state: string; at: number }[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('event store circuit breaker changed state')) continue;
    try {
      const { state, time } = JSON.parse(line) as { state?: unknown; time?: unknown };
      if (typeof state === 'string' && typeof time === 'number') out.push({ state, at: time });
    } catch {
      // Not a JSON line.
    }
  }
  return out;
}

/** Just the states of `breakerLog`. */
export function breakerTransitions(output: string): string[] {
  return breakerLog(output).map((t) => t.state);
}

/** Seconds a fault scenario runs its load, from FAULTS_SECONDS (default `fallback`). */
export function faultSeconds(fallback: number): number {
  const raw = process.env.FAULTS_SECONDS;
  const n = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

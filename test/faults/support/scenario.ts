/**
 * What every fault scenario shares: load sizing (short in `npm test`, longer
 * with FAULTS_SECONDS), stopping the load and proving its ledger against the
 * stores, and the one summary line per scenario.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import { checkStores, type CheckResult, type ShardStore } from '../../support/checker.js';
import { DEFAULT_LOAD_METHODS, summaryLine, type ExpectedError, type Ledger, type LoadOptions, type LoadRun } from '../../support/ledger.js';
import type { Cluster } from '../../support/cluster.js';

/**
 * `AddOrderLine` commands sent at once per order, so owners append multi-event
 * batch entries under every fault.
 * @default 4
 */
export const FAULT_BURST = 4;

/** Errors the fault may cause on `shard` only (every other shard must answer without error). */
export function onShard(shard: string, ...errors: string[]): ExpectedError[] {
  return errors.map((error) => ({ error, when: (c) => c.shard === shard }));
}

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
    ownerOf: (orderId) => cluster.ownerOf(orderId),
    burst: FAULT_BURST,
    // Every domain under fault: each order id is also a SKU whose inventory keeps receiving stock.
    methods: [...DEFAULT_LOAD_METHODS, 'ReceiveStock'],
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
export async function settle(name: string, cluster: Cluster, run: LoadRun, extra: (ledger: Ledger) => Record<string, string | number | undefined> = () => ({})): Promise<Finished> {
  const ledger = await run.stop();
  const check = await checkStores(cluster.stores(), ledger);
  console.log(summaryLine(name, ledger, check, extra(ledger)));
  return { ledger, check };
}

/**
 * What every scenario must end with: nothing lost, nothing duplicated, no
 * partial append, no other violation (the ledger's unexpected answers
 * included), every process running.
 */
export function expectIntact(finished: Finished, cluster: Cluster): void {
  const { check } = finished;
  expect(check.violations.slice(0, 20), `${check.violations.length} violations`).toEqual([]);
  expect(check.lost).toBe(0);
  expect(check.duplicated).toBe(0);
  expect(check.partial).toBe(0);
  expect(cluster.dead()).toEqual([]);
  // Every kind of command the workload sent (every domain's) was acknowledged at least once, so the
  // checks above proved it too.
  const sent = new Set([...finished.ledger.commands.values()].map((c) => c.method));
  const acked = new Set(finished.ledger.acks.map((a) => a.method));
  expect([...sent].filter((m) => !acked.has(m))).toEqual([]);
}

/**
 * What a scenario whose fault strikes commands in flight must also show: the
 * fault did find commands in flight (`struck`), and at least one of them had
 * committed without its caller hearing so, so a retry with its command id
 * answered `duplicate` (I4 exercised, not just possible).
 */
export function expectRetriesSettled(finished: Finished, struck: readonly string[]): void {
  expect(struck.length, 'commands in flight when the fault struck').toBeGreaterThan(0);
  expect(finished.ledger.retriedDuplicates, 'retries answered duplicate').toBeGreaterThan(0);
  expect(finished.ledger.states().unknown).toBe(0);
}

/** Waits (up to `timeoutMs`) until a command of a matching shard is in flight; returns the ones in flight then. */
export async function whenInFlight(ledger: Ledger, shard: (id: string | undefined) => boolean, timeoutMs = 5000): Promise<string[]> {
  await ledger.untilInFlight(shard, timeoutMs);
  return [...ledger.inFlight.keys()].filter((id) => shard(ledger.commands.get(id)?.shard));
}

/** Of `commandIds`, those some store has a result for (committed). */
export async function committedAmong(stores: readonly ShardStore[], commandIds: readonly string[]): Promise<string[]> {
  if (commandIds.length === 0) return [];
  const out: string[] = [];
  for (const store of stores) {
    const client = new pg.Client({ connectionString: store.url });
    client.on('error', () => {});
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>('SELECT DISTINCT command_id AS id FROM command_results WHERE command_id = ANY($1)', [commandIds]);
      out.push(...rows.map((r) => r.id));
    } finally {
      await client.end();
    }
  }
  return out;
}

/** How long a frozen process is given for answers already on their way to reach their callers. */
const IN_TRANSIT_MS = 300;

/**
 * Freezes `target` (SIGSTOP) while commands of a matching shard are in flight,
 * and keeps it frozen once one of them is already committed in a store: its
 * answer cannot leave the frozen process any more, so the caller will only
 * learn the outcome from a retry (which must say `duplicate`). Otherwise thaws
 * it and tries again a moment later, up to `tries` times. Returns with
 * `target` frozen (the caller kills it), the commands in flight at that
 * moment, and those of them already committed (empty if no try found one).
 */
export async function freezeWithCommittedInFlight(
  ledger: Ledger,
  stores: readonly ShardStore[],
  target: { signal(sig: NodeJS.Signals): void },
  shard: (id: string | undefined) => boolean,
  tries = 40,
): Promise<{ inFlight: string[]; committed: string[] }> {
  let last = { inFlight: [] as string[], committed: [] as string[] };
  for (let i = 0; i < tries; i++) {
    await whenInFlight(ledger, shard);
    target.signal('SIGSTOP');
    await sleep(IN_TRANSIT_MS);
    const inFlight = [...ledger.inFlight.keys()].filter((id) => shard(ledger.commands.get(id)?.shard));
    last = { inFlight, committed: await committedAmong(stores, inFlight) };
    if (last.committed.length > 0 || i === tries - 1) return last;
    target.signal('SIGCONT');
    await sleep(50 + Math.random() * 250);
  }
  return last;
}

/** `settle`, then `expectIntact`. */
export async function finish(name: string, cluster: Cluster, run: LoadRun, extra: (ledger: Ledger) => Record<string, string | number | undefined> = () => ({})): Promise<Finished> {
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

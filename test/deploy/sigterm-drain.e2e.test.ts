/**
 * What Kubernetes does to a pod, done to real processes under load: SIGTERM
 * while many callers are mid-command. The manifests give each process
 * SHUTDOWN_GRACE_MS to drain; within it, the process must turn NOT_SERVING,
 * finish every call it accepted, acknowledge nothing it did not commit, refuse
 * the rest with a status (never a hang, never a call cut without one), flush,
 * close its pools and exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients, type OrderMethod } from '../support/grpc.js';
import { startProcess, startShardProcess, type ServiceProcess } from '../support/processes.js';
import { freePort } from '../support/postgres-process.js';
import { healthClient, type ServingStatus } from './support/health.js';

const GRACE_MS = 8000;
const CALLERS = 48;
/** How long callers keep calling after the signal (calls then must be refused, with a status). */
const CALL_AFTER_SIGNAL_MS = 1500;
const CALL_DEADLINE_MS = GRACE_MS;

interface Outcome {
  readonly commandId: string;
  readonly code: grpc.status;
  /** When the call was sent, and when its answer came. */
  readonly sentAt: number;
  readonly at: number;
}

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Lyon', postalCode: '69001', country: 'FR' });

/**
 * Runs CALLERS concurrent callers against `target` (each on its own channel,
 * each command with an id), sends SIGTERM to `victim` mid-load, and keeps
 * calling for a while after. Returns every outcome and the signal's time.
 */
async function loadThroughSigterm(
  target: string,
  victim: ServiceProcess,
  prefix: string,
): Promise<{ outcomes: Outcome[]; signalledAt: number; health: { status: ServingStatus; at: number }[]; exit: number | null; exitedAt: number }> {
  const setup = connect(target);
  await setup.call('PlaceOrder', placeOrder(`${prefix}-hot`, { commandId: `${prefix}-hot` }), { deadlineMs: 10_000 });
  setup.close();

  // A client watching health, as a router or load balancer would; it lets go once told NOT_SERVING.
  const health: { status: ServingStatus; at: number }[] = [];
  const probe = healthClient(victim.address);
  const watch = probe.watch((status) => {
    health.push({ status, at: Date.now() });
    if (status === 'NOT_SERVING') watch.cancel();
  });

  const clients: Clients[] = Array.from({ length: CALLERS }, () => connect(target));
  const outcomes: Outcome[] = [];
  let signalledAt = Number.POSITIVE_INFINITY;
  const exited = victim.exited.then((code) => ({ code, at: Date.now() }));
  const callers = clients.map(async (c, i) => {
    // Bounded: at most 10,000 calls per caller, and none later than CALL_AFTER_SIGNAL_MS after the signal.
    for (let k = 0; k < 10_000 && Date.now() < signalledAt + CALL_AFTER_SIGNAL_MS; k++) {
      // Half the callers queue on one hot aggregate (long mailboxes in flight), half place new orders.
      const hot = i % 2 === 0;
      const commandId = `${prefix}-${i}-${k}`;
      const method: OrderMethod = hot ? 'UpdateShippingAddress' : 'PlaceOrder';
      const request = hot ? { orderId: `${prefix}-hot`, commandId, shippingAddress: address(i) } : placeOrder(`${prefix}-${i}-${k}`, { commandId });
      const sentAt = Date.now();
      const out = await c.attempt(method, request, { deadlineMs: CALL_DEADLINE_MS });
      outcomes.push({ commandId, code: 'ok' in out ? grpc.status.OK : out.error.code, sentAt, at: Date.now() });
      // A refused caller backs off a little instead of spinning on connection refusals.
      if (!('ok' in out)) await new Promise((r) => setTimeout(r, 20));
    }
  });

  // Let the load build up, then signal as Kubernetes does after the preStop hook.
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000 && outcomes.filter((o) => o.code === grpc.status.OK).length < 300) await new Promise((r) => setTimeout(r, 20));
  signalledAt = Date.now();
  victim.signal('SIGTERM');
  await Promise.all(callers);
  const { code, at } = await exited;
  watch.cancel();
  probe.close();
  for (const c of clients) c.close();
  return { outcomes, signalledAt, health, exit: code, exitedAt: at };
}

/** Command ids of every event in a shard's database, with the versions of the hot stream. */
async function committed(url: string, hotStream: string): Promise<{ ids: Set<string>; hotVersions: number[] }> {
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  try {
    const ids = await sql.query<{ id: string }>(`SELECT metadata->>'command_id' AS id FROM events WHERE metadata->>'command_id' IS NOT NULL`);
    const hot = await sql.query<{ v: number }>('SELECT version::int AS v FROM events WHERE stream_id = $1 ORDER BY version', [hotStream]);
    return { ids: new Set(ids.rows.map((r) => r.id)), hotVersions: hot.rows.map((r) => r.v) };
  } finally {
    await sql.end();
  }
}

function expectCleanDrain(run: Awaited<ReturnType<typeof loadThroughSigterm>>, output: string): void {
  const codes = new Map<string, number>();
  for (const o of run.outcomes) codes.set(grpc.status[o.code], (codes.get(grpc.status[o.code]) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(codes));
  // Every call got a status: OK, or refused as unavailable — no hang (DEADLINE_EXCEEDED), nothing else.
  for (const code of codes.keys()) expect(['OK', 'UNAVAILABLE', 'CANCELLED'], summary).toContain(code);
  expect(codes.get('OK') ?? 0).toBeGreaterThan(300);
  expect(codes.get('UNAVAILABLE') ?? 0, `calls after the signal were refused: ${summary}`).toBeGreaterThan(0);
  // Calls in flight at the signal were finished, not dropped: some were acknowledged after it.
  expect(run.outcomes.filter((o) => o.code === grpc.status.OK && o.at > run.signalledAt).length, summary).toBeGreaterThan(0);
  // And most of them were: every caller had a call in flight (or was about to), and only calls that had not
  // reached the process when it stopped accepting may be refused. A process that exits at once answers none.
  const inFlight = run.outcomes.filter((o) => o.sentAt < run.signalledAt && o.at >= run.signalledAt);
  const finished = inFlight.filter((o) => o.code === grpc.status.OK).length;
  expect(inFlight.length, summary).toBeGreaterThan(CALLERS / 2);
  expect(finished, `${finished} of ${inFlight.length} calls in flight at the signal were acknowledged`).toBeGreaterThanOrEqual(inFlight.length / 2);
  // Health turned NOT_SERVING on the signal.
  expect(run.health.map((h) => h.status)).toEqual(['SERVING', 'NOT_SERVING']);
  expect(run.health[1]!.at).toBeGreaterThanOrEqual(run.signalledAt);
  // Drained within the grace period, without cancelling anything, and exited cleanly.
  expect(run.exit, output).toBe(0);
  expect(run.exitedAt - run.signalledAt).toBeLessThan(GRACE_MS);
  expect(output).not.toContain('grace period over');
  console.log(`[sigterm drain] ${summary}; in flight at the signal: ${inFlight.length}, acknowledged ${finished}; exited ${run.exitedAt - run.signalledAt} ms after SIGTERM`);
}

describe('a shard that gets SIGTERM under load', () => {
  let db: TestDatabase;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('sw_drain');
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(2000)));
    await db?.drop();
  });

  it('finishes what it accepted, refuses the rest with a status, loses no acknowledged command and exits 0 within the grace period', async () => {
    const shard = await startShardProcess({ DATABASE_URL: db.url, SHUTDOWN_GRACE_MS: String(GRACE_MS), LOG_LEVEL: 'info' });
    procs.push(shard);
    const run = await loadThroughSigterm(shard.address, shard, 'drain');
    expectCleanDrain(run, shard.output());
    // The whole close ran: pipeline drained, writer flushed, pools closed.
    expect(shard.output()).toContain('"msg":"shard stopped"');

    // Acknowledged ⇔ committed: nothing acknowledged is missing, nothing committed went unacknowledged.
    const acked = new Set(run.outcomes.filter((o) => o.code === grpc.status.OK).map((o) => o.commandId));
    const { ids, hotVersions } = await committed(db.url, 'order-header-drain-hot');
    ids.delete('drain-hot');
    expect(
      [...acked].filter((id) => !ids.has(id)),
      'acknowledged but not committed',
    ).toEqual([]);
    expect(
      [...ids].filter((id) => !acked.has(id)),
      'committed but answered with an error',
    ).toEqual([]);
    expect(hotVersions).toEqual(hotVersions.map((_, i) => i + 1));

    // So a client may retry every refused call: against the restarted shard each applies exactly once.
    const again = await startShardProcess({ DATABASE_URL: db.url });
    procs.push(again);
    const client = connect(again.address);
    const refused = run.outcomes.filter((o) => o.code !== grpc.status.OK).slice(0, 200);
    for (const o of refused) {
      const [, i, k] = /^drain-(\d+)-(\d+)$/.exec(o.commandId)!;
      const hot = Number(i) % 2 === 0;
      const request = hot ? { orderId: 'drain-hot', commandId: o.commandId, shippingAddress: address(Number(i)) } : placeOrder(`drain-${i}-${k}`, { commandId: o.commandId });
      const result = await client.call(hot ? 'UpdateShippingAddress' : 'PlaceOrder', request);
      expect(result.duplicate, o.commandId).toBe(false);
    }
    // And an acknowledged one, retried, is recognised (a PlaceOrder's order id is its command id).
    const someAcked = [...acked].find((id) => Number(/^drain-(\d+)-/.exec(id)![1]) % 2 === 1)!;
    expect((await client.call('PlaceOrder', placeOrder(someAcked, { commandId: someAcked }))).duplicate).toBe(true);
    client.close();
  });
});

describe('a router that gets SIGTERM under load', () => {
  let db: TestDatabase;
  let ringDb: TestDatabase;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    [db, ringDb] = await Promise.all([createTestDatabase('sw_drain_router'), createTestDatabase('sw_drain_ring')]);
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(2000)));
    await db?.drop();
    await ringDb?.drop();
  });

  it('finishes every call it forwarded, refuses the rest with a status, and exits 0 within the grace period', async () => {
    const port = await freePort();
    const ring = { RING_DATABASE_URL: ringDb.url, RING_BOOTSTRAP: `shard-0=127.0.0.1:${port}` };
    const shard = await startShardProcess({ ...ring, SHARD_ID: 'shard-0', DATABASE_URL: db.url, GRPC_ADDRESS: `127.0.0.1:${port}` });
    procs.push(shard);
    const router = await startProcess('router/main.ts', { ...ring, GRPC_ADDRESS: '127.0.0.1:0', SHUTDOWN_GRACE_MS: String(GRACE_MS), LOG_LEVEL: 'info' });
    procs.push(router);

    const run = await loadThroughSigterm(router.address, router, 'rdrain');
    expectCleanDrain(run, router.output());
    expect(router.output()).toContain('"msg":"router stopped"');

    const acked = new Set(run.outcomes.filter((o) => o.code === grpc.status.OK).map((o) => o.commandId));
    const { ids } = await committed(db.url, 'order-header-rdrain-hot');
    ids.delete('rdrain-hot');
    expect(
      [...acked].filter((id) => !ids.has(id)),
      'acknowledged but not committed',
    ).toEqual([]);
    // A call the router refused never reached the shard; one it forwarded was answered.
    expect(
      [...ids].filter((id) => !acked.has(id)),
      'committed but answered with an error',
    ).toEqual([]);
    // The shard behind it is untouched and still serving.
    expect(shard.child.exitCode).toBeNull();
  });
});

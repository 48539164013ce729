/**
 * Order fulfilment on real processes: a router, shards, and the pm-worker.
 * N orders (PM_E2E_ORDERS, default 500, as issue 19 asks) go through their life through the
 * public API — placed with lines; then paid (authorized, captured), paid and
 * cancelled right after the capture, or never paid — while the worker is
 * SIGKILLed and restarted, a shard is SIGKILLed and restarted, and a shard is
 * added to the ring. At the end, counted in the stores: every paid order
 * shipped exactly once, every order cancelled after its capture refunded
 * exactly once (an order the worker shipped before the cancellation came is
 * shipped and not refunded, its cancellation refused), every unpaid order
 * cancelled once after its timeout (not before), no parked instance, no
 * command applied twice, no input recorded twice on an instance and no command
 * decided twice by one; instance streams snapshotted, and moved to the added
 * shard with their orders. Then: parking and `pm retry`, a timeout that comes due while the
 * worker lags or is down, a command of another domain, and the whole history
 * replayed to a second worker group, which applies nothing again.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { CommandFailedError, ConnectionLostError, createClient, type CommandResult, type ShardwriteClient } from '../../src/client/index.js';
import { PgPmStore } from '../../pm-worker/store.js';
import { commandCall } from '../../pm-worker/worker.js';
import { FULFILMENT_EVENT_TYPES } from '../../src/process-managers/index.js';
import { pmCommand } from '../../cli/pm.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';

const N = Number(process.env.PM_E2E_ORDERS ?? 500);
const PAYMENT_TIMEOUT_MS = 8000;
const RUN = `f${Date.now().toString(36)}`;

let cluster: Cluster;
let worker: ServiceProcess;
let client: ShardwriteClient;

const workerEnv = () => ({
  PM_SOURCE: cluster.routerAddress,
  RING_DATABASE_URL: cluster.ringUrl,
  PM_PAYMENT_TIMEOUT_MS: String(PAYMENT_TIMEOUT_MS),
  PM_TIMEOUT_SCAN_MS: '200',
  PM_PARTITIONS: '8',
  METRICS_ADDRESS: '127.0.0.1:0',
  LOG_LEVEL: 'warn',
});
const metricsOf = (p: ServiceProcess) => /metrics http:\/\/(\S+)\/metrics/.exec(p.output())![1]!;
async function scrape(): Promise<string> {
  const res = await fetch(`http://${metricsOf(worker)}/metrics`);
  return res.text();
}
const startWorker = (extra: Record<string, string> = {}) => startProcess('pm-worker/main.ts', { ...workerEnv(), ...extra }, /pm-worker listening on (\S+)/);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The sum of a counter's series whose labels include `labels` (e.g. `outcome="duplicate"`). */
const counter = (text: string, name: string, labels: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

/** Rows of `sql` from every shard's store (the shared PostgreSQL may refuse a connection for a moment: tried again). */
async function acrossShards<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const out: R[] = [];
      for (const s of cluster.shards) out.push(...(await s.sql.query<R>(sql, params)).rows);
      return out;
    } catch (err) {
      if (attempt >= 20 || !/too many clients|ECONNRESET/.test(String(err))) throw err;
      await sleep(500);
    }
  }
}

beforeAll(async () => {
  // Instance streams snapshotted every few events, so loads after the shard's restart and the move start from snapshots.
  cluster = await startCluster({ shards: 3, spares: 1, shardEnv: { SNAPSHOT_INTERVALS: 'pm-order-fulfilment=3' } });
  worker = await startWorker();
  client = createClient(cluster.routerAddress);
}, 120_000);

afterAll(async () => {
  client?.close();
  await worker?.stop(5000);
  await cluster?.close();
});

/** Sends with the same command id until an answer: a cut connection or an unavailable shard is retried. */
async function send(call: () => Promise<CommandResult>): Promise<CommandResult | CommandFailedError> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const retry =
        err instanceof ConnectionLostError || (err instanceof CommandFailedError && ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'ABORTED'].some((c) => err.message.startsWith(c)));
      if (!retry || attempt > 60) {
        if (err instanceof CommandFailedError) return err;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
}

type Kind = 'paid' | 'cancelled-after-capture' | 'unpaid';
const kindOf = (i: number): Kind => (i % 4 === 2 ? 'cancelled-after-capture' : i % 4 === 3 ? 'unpaid' : 'paid');
const ADDRESS = { name: 'N', line1: 'L', city: 'C', postalCode: '1', country: 'DE' };

async function drive(i: number): Promise<{ id: string; kind: Kind; cancelAccepted: boolean }> {
  const id = `${RUN}-${i}`;
  const ok = async (call: () => Promise<CommandResult>) => {
    const r = await send(call);
    if (r instanceof CommandFailedError) throw new Error(`${id}: ${r.message}`);
    return r;
  };
  const kind = kindOf(i);
  await ok(() => client.placeOrder({ orderId: id, commandId: `${id}-place`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: ADDRESS }));
  if (kind !== 'unpaid') await ok(() => client.authorizePayment({ orderId: id, commandId: `${id}-auth`, amountCents: '1000', currency: 'EUR' }));
  await ok(() => client.addOrderLine({ orderId: id, commandId: `${id}-line`, lineId: 'l1', sku: 's', quantity: 1, unitPriceCents: '1000' }));
  if (kind === 'unpaid') return { id, kind, cancelAccepted: false };
  await ok(() => client.capturePayment({ orderId: id, commandId: `${id}-cap`, amountCents: '1000' }));
  if (kind === 'paid') return { id, kind, cancelAccepted: false };
  // Half cancel at once, half a moment later: some cancellations come after the worker shipped (refused), some
  // race its ShipOrder (which the header then refuses, and the instance takes as the expected outcome).
  if (i % 8 === 6) await new Promise((r) => setTimeout(r, 1500 + Math.random() * 4000));
  const cancel = await send(() => client.cancelOrder({ orderId: id, commandId: `${id}-cancel`, reason: 'changed my mind' }));
  if (cancel instanceof CommandFailedError && cancel.reason !== 'BUSINESS_RULE') throw new Error(`${id}: ${cancel.message}`);
  return { id, kind, cancelAccepted: !(cancel instanceof CommandFailedError) };
}

/** Event counts of every order stream, from the store that holds it now (copies sealed by a move do not count). */
async function countEvents(): Promise<{ counts: Map<string, number>; repeatedCommandIds: string[] }> {
  // The machine's PostgreSQL is shared by test clusters running side by side: a refused connection is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await countEventsOnce();
    } catch (err) {
      if (attempt >= 20 || !/too many clients|ECONNRESET/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function countEventsOnce(): Promise<{ counts: Map<string, number>; repeatedCommandIds: string[] }> {
  const counts = new Map<string, number>();
  const repeatedCommandIds: string[] = [];
  for (const s of cluster.shards) {
    const c = new pg.Client({ connectionString: s.databaseUrl });
    await c.connect();
    try {
      const { rows } = await c.query<{ stream_id: string; type: string; n: string }>(
        `SELECT e.stream_id, e.type, count(*) AS n FROM events e JOIN streams s USING (stream_id)
         WHERE s.moved_at_epoch IS NULL AND e.stream_id LIKE $1 GROUP BY 1, 2`,
        [`order-%-${RUN}-%`],
      );
      for (const r of rows) counts.set(`${r.stream_id}/${r.type}`, (counts.get(`${r.stream_id}/${r.type}`) ?? 0) + Number(r.n));
      // Every order command appends one event: a command id on two events of a stream was applied twice.
      const dup = await c.query<{ stream_id: string; command_id: string }>(
        `SELECT e.stream_id, e.metadata->>'command_id' AS command_id FROM events e JOIN streams s USING (stream_id)
         WHERE s.moved_at_epoch IS NULL AND e.stream_id LIKE $1 AND e.metadata ? 'command_id'
         GROUP BY 1, 2 HAVING count(*) > 1`,
        [`order-%-${RUN}-%`],
      );
      repeatedCommandIds.push(...dup.rows.map((r) => `${r.stream_id} ${r.command_id}`));
    } finally {
      await c.end();
    }
  }
  return { counts, repeatedCommandIds };
}

it(`fulfils ${N} orders exactly once through a killed worker, a killed shard and an added shard`, async () => {
  const results: { id: string; kind: Kind; cancelAccepted: boolean }[] = [];
  let next = 0;
  const lanes = Array.from({ length: 16 }, async () => {
    while (next < N) results.push(await drive(next++));
  });
  const disruptions = (async () => {
    while (results.length < N / 4) await new Promise((r) => setTimeout(r, 50));
    worker.signal('SIGKILL');
    await worker.exited;
    await new Promise((r) => setTimeout(r, 500));
    worker = await startWorker();
    while (results.length < N / 2) await new Promise((r) => setTimeout(r, 50));
    // The shared PostgreSQL may refuse a starting shard's connections for a moment: start it again.
    for (let attempt = 1; ; attempt++) {
      try {
        await cluster.shard('shard-1').restart();
        break;
      } catch (err) {
        if (attempt >= 10 || !String(err).includes('too many clients')) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    while (results.length < (3 * N) / 4) await new Promise((r) => setTimeout(r, 50));
    // A move is resumable: one cut short (the shared PostgreSQL refusing connections) is run again.
    let errors: string[] = [];
    for (let attempt = 1; ; attempt++) {
      errors = [];
      const out: Output = { tty: false, line: () => {}, error: (t) => errors.push(t) };
      const code = await ringCommand(['add', 'shard-3', '--address', cluster.shard('shard-3').address], { RING_DATABASE_URL: cluster.ringUrl }, out);
      if (code === 0) break;
      if (attempt >= 10 || !errors.join('\n').includes('too many clients')) expect(code, errors.join('\n')).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  await Promise.all([...lanes, disruptions]);
  expect(results).toHaveLength(N);

  const expected = (r: (typeof results)[number]) => {
    const h = `order-header-${r.id}`;
    const p = `order-payment-${r.id}`;
    switch (r.kind) {
      case 'paid':
        return { [`${h}/OrderShipped`]: 1, [`${h}/PaymentCaptureRecorded`]: 1, [`${h}/OrderCancelled`]: 0, [`${p}/PaymentRefunded`]: 0 };
      case 'cancelled-after-capture':
        return r.cancelAccepted
          ? { [`${h}/OrderShipped`]: 0, [`${h}/OrderCancelled`]: 1, [`${p}/PaymentRefunded`]: 1 }
          : { [`${h}/OrderShipped`]: 1, [`${h}/OrderCancelled`]: 0, [`${p}/PaymentRefunded`]: 0 };
      case 'unpaid':
        return { [`${h}/OrderShipped`]: 0, [`${h}/OrderCancelled`]: 1, [`${h}/PaymentCaptureRecorded`]: 0 };
    }
  };
  const mismatches = (counts: Map<string, number>) =>
    results.flatMap((r) => Object.entries(expected(r)).flatMap(([key, want]) => ((counts.get(key) ?? 0) === want ? [] : [`${key}: ${counts.get(key) ?? 0}, expected ${want}`])));

  const deadline = Date.now() + PAYMENT_TIMEOUT_MS + 60_000;
  let last: string[] = [];
  for (;;) {
    const { counts } = await countEvents();
    last = mismatches(counts);
    if (last.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  expect(last.slice(0, 20), `${last.length} mismatches`).toEqual([]);
  // Settled: a few more seconds of redeliveries and timeout scans must change nothing.
  await new Promise((r) => setTimeout(r, 3000));
  const final = await countEvents();
  expect(mismatches(final.counts)).toEqual([]);
  expect(final.repeatedCommandIds).toEqual([]);

  // The instances' own record: no input recorded twice (a start event delivered again included: each
  // order has one instance, its stream), and no command decided twice by an instance.
  const instances = `pm-order-fulfilment-${RUN}-%`;
  const twice = await acrossShards<{ stream_id: string; what: string }>(
    `SELECT e.stream_id, 'input ' || (e.data->'input'->>'inputId') AS what FROM events e JOIN streams s USING (stream_id)
     WHERE s.moved_at_epoch IS NULL AND e.stream_id LIKE $1 AND e.type = 'InputRecorded' GROUP BY 1, 2 HAVING count(*) > 1
     UNION ALL
     SELECT e.stream_id, 'command ' || (c->>'method') FROM events e JOIN streams s USING (stream_id) CROSS JOIN jsonb_array_elements(e.data->'commands') c
     WHERE s.moved_at_epoch IS NULL AND e.stream_id LIKE $1 AND e.type = 'StepDecided' AND e.data->>'attempt' = '1' GROUP BY 1, 2 HAVING count(*) > 1`,
    [instances],
  );
  expect(twice).toEqual([]);
  // Unpaid orders were cancelled after their timeout, never before it (counted from placedAt, as the timer is).
  const unpaid = results.filter((r) => r.kind === 'unpaid').map((r) => `order-header-${r.id}`);
  const waited = await acrossShards<{ stream_id: string; waited_ms: number }>(
    `SELECT c.stream_id, (extract(epoch FROM c.recorded_at - (p.data->>'placedAt')::timestamptz) * 1000)::float8 AS waited_ms
     FROM events c JOIN events p ON p.stream_id = c.stream_id AND p.type = 'OrderPlaced' JOIN streams s ON s.stream_id = c.stream_id
     WHERE s.moved_at_epoch IS NULL AND c.stream_id = ANY($1) AND c.type = 'OrderCancelled'`,
    [unpaid],
  );
  expect(waited).toHaveLength(unpaid.length);
  expect(waited.filter((w) => w.waited_ms < PAYMENT_TIMEOUT_MS)).toEqual([]);
  // Instance streams are rebalanced like any stream: the added shard holds instances copied from their old owner.
  const moved = await cluster
    .shard('shard-3')
    .sql.query<{ n: string }>(
      `SELECT count(DISTINCT e.stream_id) AS n FROM events e JOIN streams s USING (stream_id) WHERE s.moved_at_epoch IS NULL AND e.stream_id LIKE $1 AND e.origin_shard IS NOT NULL`,
      [instances],
    );
  expect(Number(moved.rows[0]!.n)).toBeGreaterThan(0);
  // ... and snapshotted like any stream (the outcomes above were decided from them).
  const snapshotted = await acrossShards<{ n: string }>(`SELECT count(*) AS n FROM snapshots WHERE stream_id LIKE $1`, [instances]);
  expect(snapshotted.reduce((n, r) => n + Number(r.n), 0)).toBeGreaterThan(N / 2);

  const store = new PgPmStore({ connectionString: cluster.ringUrl, max: 1 });
  try {
    expect(await store.list({ status: 'parked' })).toEqual([]);
    const mine = (await store.list({ limit: 100_000 })).filter((r) => r.instanceId.startsWith(`${RUN}-`));
    expect(mine.filter((r) => r.status !== 'completed').map((r) => `${r.streamId} ${r.status}`)).toEqual([]);
    expect(mine).toHaveLength(N);
    expect((await store.counts()).timeouts).toEqual([]);
  } finally {
    await store.close();
  }
  const byKind = (k: Kind) => results.filter((r) => r.kind === k).length;
  console.log(
    `fulfilment e2e: ${N} orders — ${byKind('paid')} paid, ${byKind('cancelled-after-capture')} cancelled after capture ` +
      `(${results.filter((r) => r.cancelAccepted).length} cancellations accepted before shipping), ${byKind('unpaid')} unpaid`,
  );
}, 480_000);

it('parks an instance whose command is refused, keeps recording its inputs, shows it, and resumes it on retry with the same command ids', async () => {
  const id = `${RUN}-park`;
  const instance = `pm-order-fulfilment-${id}`;
  const lines: string[] = [];
  const out: Output = { tty: false, line: (t) => lines.push(t), error: (t) => lines.push(t) };
  // Inputs sent by hand through the public API: the order itself does not exist yet, so the step the
  // capture leads to (MarkPaymentCaptured, ShipOrder) is refused as NOT_FOUND — a refusal it does not tolerate.
  const input = (inputId: string, eventType: string, data: object, stream: string) =>
    client.recordProcessInput({
      processManager: 'order-fulfilment',
      instanceId: id,
      commandId: `in-${inputId}`,
      inputId,
      eventType,
      dataJson: JSON.stringify(data),
      sourceStreamId: `${stream}-${id}`,
      sourceVersion: '1',
      settingsJson: JSON.stringify({ paymentTimeoutMs: 600_000 }),
    });
  await input(`${id}-x1`, 'OrderPlaced', {}, 'order-header');
  await input(`${id}-x2`, 'PaymentAuthorized', { amountCents: 1000 }, 'order-payment');
  await input(`${id}-x3`, 'PaymentCaptured', { amountCents: 1000 }, 'order-payment');
  const parkedRow = async () => {
    lines.length = 0;
    expect(await pmCommand(['list', '--failed'], { RING_DATABASE_URL: cluster.ringUrl }, out)).toBe(0);
    return lines.find((l) => l.startsWith(`${instance}  parked`));
  };
  await expect.poll(parkedRow, { timeout: 30_000, interval: 300 }).toMatch(/markPaymentCaptured \(pm-[\w-]+\) refused: NOT_FOUND/);
  const failedId = /\((pm-[\w-]+)\)/.exec((await parkedRow())!)![1]!;
  await expect.poll(async () => /shardwrite_pm_instances\{process_manager="order-fulfilment",status="parked"\} 1/.test(await scrape()), { timeout: 10_000 }).toBe(true);

  // Parked: a later input is recorded, not applied; other orders are not held up.
  const later = await input(`${id}-x4`, 'PaymentCaptured', { amountCents: 1 }, 'order-payment');
  const applied = async () =>
    (
      await acrossShards<{ input_id: string }>(
        `SELECT e.data->>'inputId' AS input_id FROM events e JOIN streams s USING (stream_id) WHERE s.moved_at_epoch IS NULL AND e.stream_id = $1 AND e.type = 'InputApplied' ORDER BY e.version`,
        [instance],
      )
    ).map((r) => r.input_id);
  expect(await applied()).toEqual([`${id}-x1`, `${id}-x2`, `${id}-x3`]);
  expect(later.events.map((e) => e.type)).toEqual(['InputRecorded']);
  const other = await drive(4 * (N + 250)); // a paid one
  await expect.poll(async () => (await countEvents()).counts.get(`order-header-${other.id}/OrderShipped`) ?? 0, { timeout: 30_000 }).toBe(1);

  // The operator fixes the cause (the order now exists) and retries: the same command ids are sent again.
  await client.placeOrder({ orderId: id, commandId: `${id}-place`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: ADDRESS });
  lines.length = 0;
  expect(await pmCommand(['retry', instance], { PM_SOURCE: cluster.routerAddress }, out), lines.join('\n')).toBe(0);
  await expect.poll(async () => (await countEvents()).counts.get(`order-header-${id}/OrderShipped`) ?? 0, { timeout: 30_000 }).toBe(1);
  const { counts } = await countEvents();
  expect(counts.get(`order-header-${id}/PaymentCaptureRecorded`)).toBe(1);
  const owner = cluster.shards.map((s) => s.databaseUrl);
  let markedWith: string | undefined;
  for (const url of owner) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ id: string }>(
      `SELECT e.metadata->>'command_id' AS id FROM events e JOIN streams s USING (stream_id)
       WHERE s.moved_at_epoch IS NULL AND e.stream_id = $1 AND e.type = 'PaymentCaptureRecorded'`,
      [`order-header-${id}`],
    );
    await c.end();
    markedWith ??= rows[0]?.id;
  }
  expect(markedWith).toBe(failedId);
  await expect.poll(parkedRow, { timeout: 10_000 }).toBeUndefined();
  // What was queued behind the parked step was applied after it, in order (its own OrderPlaced, recorded by the worker, last).
  expect((await applied()).slice(0, 4)).toEqual([`${id}-x1`, `${id}-x2`, `${id}-x3`, `${id}-x4`]);
  const store = new PgPmStore({ connectionString: cluster.ringUrl, max: 1 });
  try {
    await expect.poll(async () => (await store.list({ limit: 100_000 })).find((r) => r.streamId === instance)?.status, { timeout: 20_000 }).toBe('completed');
  } finally {
    await store.close();
  }
}, 120_000);

it('never cancels an order whose payment was authorized in time, however far behind the worker is when the timeout comes due', async () => {
  // The timeouts are armed, then the worker is paused, the payments authorized (in time) and the
  // timeouts let come due: on resuming, the scan finds them due at the same moment as the group
  // delivers the authorizations.
  const ids = Array.from({ length: 20 }, (_, i) => `${RUN}-late-${i}`);
  for (const id of ids) {
    await client.placeOrder({ orderId: id, commandId: `${id}-place`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: ADDRESS });
  }
  const store = new PgPmStore({ connectionString: cluster.ringUrl, max: 1 });
  const mine = async () => (await store.list({ limit: 100_000 })).filter((r) => ids.includes(r.instanceId));
  try {
    await expect.poll(async () => (await mine()).filter((r) => r.status === 'waiting').length, { timeout: 30_000, interval: 200 }).toBe(ids.length);
    worker.signal('SIGSTOP');
    try {
      for (const id of ids) await client.authorizePayment({ orderId: id, commandId: `${id}-auth`, amountCents: '1000', currency: 'EUR' });
      await new Promise((r) => setTimeout(r, PAYMENT_TIMEOUT_MS + 1000));
    } finally {
      worker.signal('SIGCONT');
    }
    // Settled: no timeout left (idle: authorized, waiting for its capture; completed: cancelled).
    await expect.poll(async () => (await mine()).filter((r) => r.status === 'idle' || r.status === 'completed').length, { timeout: 60_000, interval: 500 }).toBe(ids.length);
  } finally {
    await store.close();
  }
  const { counts } = await countEvents();
  expect(ids.filter((id) => (counts.get(`order-header-${id}/OrderCancelled`) ?? 0) > 0)).toEqual([]);
}, 120_000);

it('fires a payment timeout that came due while no worker ran once the worker is back, once', async () => {
  const ids = Array.from({ length: 10 }, (_, i) => `${RUN}-down-${i}`);
  for (const id of ids) {
    await client.placeOrder({ orderId: id, commandId: `${id}-place`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: ADDRESS });
  }
  const store = new PgPmStore({ connectionString: cluster.ringUrl, max: 1 });
  const ring = new pg.Client({ connectionString: cluster.ringUrl });
  await ring.connect();
  try {
    await expect
      .poll(async () => (await store.list({ limit: 100_000 })).filter((r) => ids.includes(r.instanceId) && r.status === 'waiting').length, { timeout: 30_000, interval: 200 })
      .toBe(ids.length);
    worker.signal('SIGKILL');
    await worker.exited;
    await sleep(PAYMENT_TIMEOUT_MS + 1000);
    // Due while no worker ran: only the durable rows know of them.
    const due = await ring.query<{ n: string }>('SELECT count(*) AS n FROM pm_timeouts WHERE instance_id = ANY($1) AND due_at <= now()', [ids]);
    expect(Number(due.rows[0]!.n)).toBe(ids.length);
    expect((await countEvents()).counts.get(`order-header-${ids[0]}/OrderCancelled`) ?? 0).toBe(0);
    worker = await startWorker();
    const cancelled = async () => {
      const { counts } = await countEvents();
      return ids.filter((id) => counts.get(`order-header-${id}/OrderCancelled`) === 1).length;
    };
    await expect.poll(cancelled, { timeout: 30_000, interval: 500 }).toBe(ids.length);
    // A few more scans change nothing: each fired once, as one recorded input, and no row is left.
    await sleep(2000);
    const { counts } = await countEvents();
    expect(ids.map((id) => counts.get(`order-header-${id}/OrderCancelled`))).toEqual(ids.map(() => 1));
    const fired = await acrossShards<{ stream_id: string; n: string }>(
      `SELECT e.stream_id, count(*) AS n FROM events e JOIN streams s USING (stream_id)
       WHERE s.moved_at_epoch IS NULL AND e.stream_id = ANY($1) AND e.type = 'InputRecorded' AND e.data->'input'->>'kind' = 'timeout' GROUP BY 1`,
      [ids.map((id) => `pm-order-fulfilment-${id}`)],
    );
    expect(fired.map((r) => Number(r.n))).toEqual(ids.map(() => 1));
    expect(Number((await ring.query<{ n: string }>('SELECT count(*) AS n FROM pm_timeouts WHERE instance_id = ANY($1)', [ids])).rows[0]!.n)).toBe(0);
  } finally {
    await ring.end();
    await store.close();
  }
}, 120_000);

it("sends a process manager's command of another domain through that domain's service, and finds none for a command the API lacks", async () => {
  const receive = commandCall(client, { service: 'shardwrite.v1.InventoryService', method: 'ReceiveStock' });
  const sku = `${RUN}-sku`;
  const first = await receive!({ sku, commandId: `${sku}-r1`, quantity: 3 });
  expect(first.events.map((e) => e.type)).toEqual(['StockReceived']);
  expect((await receive!({ sku, commandId: `${sku}-r1`, quantity: 3 })).duplicate).toBe(true);
  expect(commandCall(client, { method: 'shipOrder' })).toBeDefined();
  expect(commandCall(client, { service: 'shardwrite.v1.InventoryService', method: 'ShipOrder' })).toBeUndefined();
  expect(commandCall(client, { service: 'shardwrite.v1.NoSuchService', method: 'ReceiveStock' })).toBeUndefined();
  // @ts-expect-error the process-manager RPCs are the runtime's, not a definition's to send
  expect(commandCall(client, { method: 'retryProcess' })).toBeUndefined();
});

it("replays the whole history to a second worker group without applying any command again (a rebuild never re-runs a process manager's side effects)", async () => {
  const store = `SELECT count(*) FILTER (WHERE e.stream_id NOT LIKE 'pm-%') AS domain_events,
       count(*) FILTER (WHERE e.stream_id LIKE 'pm-%' AND e.type = 'StepDecided') AS steps,
       count(*) FILTER (WHERE e.stream_id LIKE 'pm-%' AND e.type = 'StepDecided' AND jsonb_array_length(e.data->'commands') > 0) AS steps_with_commands,
       count(*) FILTER (WHERE e.stream_id ~ '^order-(header|payment)-' AND e.type = ANY($1)) AS sources
     FROM events e JOIN streams s USING (stream_id) WHERE s.moved_at_epoch IS NULL`;
  const totals = async () => {
    const rows = await acrossShards<Record<string, string>>(store, [[...FULFILMENT_EVENT_TYPES]]);
    const sum = (k: string) => rows.reduce((n, r) => n + Number(r[k]), 0);
    return { domainEvents: sum('domain_events'), steps: sum('steps'), stepsWithCommands: sum('steps_with_commands'), sources: sum('sources') };
  };
  const before = await totals();
  const replay = await startWorker({ PM_GROUP_PREFIX: `replay-${RUN}`, PM_START_FROM: 'beginning' });
  try {
    const metrics = async () => (await fetch(`http://${metricsOf(replay)}/metrics`)).text();
    // Caught up: every source event offered again (each a duplicate) and every step with commands carried out
    // again (its completion a duplicate of the first one's, or refused as no longer in flight).
    await expect
      .poll(
        async () => {
          const m = await metrics();
          return counter(m, 'shardwrite_pm_inputs_total', 'outcome="duplicate"') >= before.sources && counter(m, 'shardwrite_pm_steps_total', 'outcome=') >= before.stepsWithCommands;
        },
        { timeout: 180_000, interval: 1000 },
      )
      .toBe(true);
    await sleep(3000);
    const m = await metrics();
    expect(counter(m, 'shardwrite_pm_commands_total', 'outcome="duplicate"')).toBeGreaterThan(0);
    expect(counter(m, 'shardwrite_pm_commands_total', 'outcome="applied"')).toBe(0);
    expect(counter(m, 'shardwrite_pm_inputs_total', 'outcome="recorded"')).toBeLessThanOrEqual(counter(m, 'shardwrite_pm_timeouts_fired_total', ''));
    expect(counter(m, 'shardwrite_pm_steps_total', 'outcome="parked"')).toBe(0);
    const after = await totals();
    // Nothing new on any order stream, and no instance decided anything new.
    expect({ domainEvents: after.domainEvents, steps: after.steps }).toEqual({ domainEvents: before.domainEvents, steps: before.steps });
  } finally {
    await replay.stop(5000);
  }
}, 240_000);

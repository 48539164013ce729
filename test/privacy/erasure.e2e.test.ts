/**
 * Crypto-shredding over real processes: a router, three shards and a spare on
 * their own stores, Redis, the ring database. 100 customers place orders over
 * every shard (more while shard-3 joins the ring, so some streams are copied
 * by the rebalancer); 10 are erased. Afterwards no dump of any database, no
 * Redis value and no process log holds any customer's e-mail or address in
 * plaintext, the 90 others read back intact (ReadStream and a subscription),
 * the 10 read "[erased]", erasing again changes nothing, and an erasure
 * interrupted after its key was destroyed is finished by running it again.
 * The processes export their traces to a receiver the test serves, and a
 * relay publishes every event to NATS JetStream: the exported spans and,
 * after the erasures, the JetStream stream hold none of the erased data.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { eraseCommand } from '../../cli/erase.js';
import { ringCommand, type Output } from '../../cli/ring.js';
import { subscribe } from '../../src/client/index.js';
import { ERASED } from '../../src/privacy/cipher.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';
import { connect as connectNats, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type Clients } from '../support/grpc.js';
import { run } from '../support/run.js';

const REDIS_URL = process.env.REDIS_URL;
const CUSTOMERS = 100;
const ERASED_COUNT = 10;
const tag = randomBytes(4).toString('hex');
const redisPrefix = `sw:erasure:${tag}:`;

const ADMIN = randomBytes(16).toString('hex');
const CALLER = randomBytes(16).toString('hex');
const EVERYTHING = randomBytes(16).toString('hex');
const sha = (t: string) => createHash('sha256').update(t).digest('hex');

interface Customer {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly line1: string;
  readonly newLine1: string;
  readonly orders: string[];
}

const customers: Customer[] = Array.from({ length: CUSTOMERS }, (_, i) => ({
  id: `cust-${tag}-${i}`,
  email: `person${i}.${tag}@mail.example`,
  name: `Name${i}x${tag}`,
  // `No 1x …`, never a part of another customer's (`No 11x …`): the checks search for substrings.
  line1: `No ${i}x Privacy Lane ${tag}`,
  newLine1: `No ${i}x Moved Street ${tag}`,
  orders: [],
}));
const erased = customers.slice(0, ERASED_COUNT);
const kept = customers.slice(ERASED_COUNT);
/** Every plaintext a customer gave us. */
const secretsOf = (c: Customer) => [c.email, c.name, c.line1, c.newLine1];

let cluster: Cluster;
let caller: Clients;
let receiver: OtlpReceiver;
let relay: ServiceProcess;
let nc: NatsConnection;
let jsm: JetStreamManager;
const NATS_STREAM = `SW_TEST_ERASURE_${tag}`;

/** Every message the relay's JetStream stream holds, as text. */
async function busMessages(): Promise<{ count: number; text: string }> {
  const info = await jsm.streams.info(NATS_STREAM);
  const out: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(NATS_STREAM, { seq }).catch(() => undefined);
    if (m) out.push(m.string());
  }
  return { count: out.length, text: out.join('\n') };
}

const address = (c: Customer, line1: string) => ({ name: c.name, line1, city: 'Springfield', postalCode: 'PD 1', country: 'GB' });

/** Calls until an answer that is not a transient one of a move (the same command id makes a retry safe). */
async function until(method: Parameters<Clients['call']>[0], request: object): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await caller.attempt(method, request, { deadlineMs: 5000 });
    if ('ok' in r) return;
    if (r.error.code !== grpc.status.UNAVAILABLE && r.error.code !== grpc.status.ABORTED && r.error.code !== grpc.status.DEADLINE_EXCEEDED) throw new Error(`${method}: ${r.error.message}`);
    if (attempt > 50) throw new Error(`${method} kept failing: ${r.error.message}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function placeFor(c: Customer, n: number): Promise<void> {
  const orderId = `ord-${tag}-${c.id.split('-').pop()}-${n}`;
  await until('PlaceOrder', { orderId, commandId: `place-${orderId}`, customerId: c.id, customerEmail: c.email, shippingAddress: address(c, c.line1) });
  c.orders.push(orderId);
}

async function erase(subject: string, token = ADMIN): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const out: Output = { tty: false, line: (t) => lines.push(t), error: (t) => errors.push(t) };
  const code = await eraseCommand([subject, '--address', cluster.routerAddress, '--token', token], {}, out);
  return { code, lines, errors };
}

async function dumpAll(): Promise<string> {
  const urls = [cluster.ringUrl, ...cluster.shards.map((s) => s.databaseUrl)];
  const dumps = await Promise.all(urls.map((url) => run('pg_dump', ['--data-only', url])));
  return dumps.join('\n');
}

async function redisValues(): Promise<string> {
  const redis = new Redis(REDIS_URL!);
  try {
    const keys = await redis.keys(`${redisPrefix}*`);
    const values = keys.length === 0 ? [] : await redis.mget(keys);
    return `${keys.length} keys\n${values.join('\n')}`;
  } finally {
    redis.disconnect();
  }
}

function logs(): string {
  return [cluster.router, ...cluster.shards.map((s) => s.process)].map((p) => p.output()).join('\n');
}

describe.skipIf(!REDIS_URL)('erasing data subjects (crypto-shredding) over real processes', () => {
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    nc = await connectNats({ servers: '127.0.0.1:4222' });
    jsm = await jetstreamManager(nc);
    cluster = await startCluster({
      shards: 3,
      spares: 1,
      auth: { AUTH_TOKENS: `sha256:${sha(ADMIN)}:ops::admin,sha256:${sha(CALLER)}:shop:t1:order-header|order-lines|order-payment|read,sha256:${sha(EVERYTHING)}:auditor::*` },
      shardEnv: {
        LOG_LEVEL: 'debug',
        REDIS_URL: REDIS_URL!,
        REDIS_KEY_PREFIX: redisPrefix,
        SNAPSHOT_INTERVAL: '2',
        PERSONAL_DATA_MASTER_KEY: randomBytes(32).toString('base64'),
        ...receiver.env(),
      },
      routerEnv: { LOG_LEVEL: 'debug', ...receiver.env() },
    });
    relay = await startProcess(
      'relay/main.ts',
      {
        RELAY_SOURCE: cluster.routerAddress,
        RELAY_GROUP: `erasure-${tag}`,
        RELAY_TOKEN: EVERYTHING,
        SHARDWRITE_INSECURE: 'true',
        NATS_URL: 'nats://127.0.0.1:4222',
        NATS_STREAM,
        NATS_SUBJECT_PREFIX: `swtest.erasure${tag}`,
        LOG_LEVEL: 'info',
      },
      /relay (following) /,
    );
    caller = connect(cluster.routerAddress, { token: CALLER });
    // Every customer's first order, and a changed address (snapshots are due every 2 events).
    await Promise.all(customers.map((c) => placeFor(c, 1)));
    await Promise.all(customers.map((c) => until('UpdateShippingAddress', { orderId: c.orders[0], commandId: `addr-${c.orders[0]}`, shippingAddress: address(c, c.newLine1) })));
    // Second orders while shard-3 joins the ring.
    const load = Promise.all(customers.map((c) => placeFor(c, 2)));
    const out: Output = { tty: false, line: () => {}, error: () => {} };
    const added = await ringCommand(['add', 'shard-3', '--address', cluster.shard('shard-3').address], { RING_DATABASE_URL: cluster.ringUrl }, out);
    await load;
    expect(added).toBe(0);
  }, 120_000);

  afterAll(async () => {
    caller?.close();
    await relay?.stop();
    await cluster?.close();
    await receiver?.close();
    await jsm?.streams.delete(NATS_STREAM).catch(() => {});
    await nc?.close();
  });

  it("spreads the orders over every shard, and stores no customer's personal data in plaintext anywhere", async () => {
    const counts = await Promise.all(cluster.shards.map(async (s) => Number((await s.sql.query(`SELECT count(*) AS n FROM events WHERE type = 'OrderPlaced'`)).rows[0].n)));
    for (const n of counts) expect(n).toBeGreaterThan(0);
    const dump = await dumpAll();
    expect(dump).toContain(customers[0]!.id); // the dump is of the right databases
    for (const c of customers) for (const secret of secretsOf(c)) expect(dump).not.toContain(secret);
    const redis = await redisValues();
    expect(redis).not.toMatch(/^0 keys/);
    for (const c of customers) for (const secret of secretsOf(c)) expect(redis).not.toContain(secret);
  });

  it('refuses an erasure to a caller without the admin scope', async () => {
    const r = await erase(erased[0]!.id, CALLER);
    expect(r.code).toBe(1);
    expect(r.errors.join('')).toMatch(/PERMISSION_DENIED/);
  });

  it('erases 10 customers: no byte of their data is readable or stored, the 90 others read back intact', async () => {
    // One erasure "killed" after its key was destroyed (phase 1, without the announcement or the event).
    const interrupted = erased[ERASED_COUNT - 1]!;
    const ring = new pg.Pool({ connectionString: cluster.ringUrl, max: 1 });
    await ring.query(`UPDATE subject_keys SET wrapped_key = NULL, master_key_id = NULL, erased_at = now() WHERE subject_id = $1`, [interrupted.id]);
    await ring.end();

    for (const c of erased) {
      const r = await erase(c.id);
      expect(r.errors).toEqual([]);
      expect(r.lines.join('')).toMatch(new RegExp(`${c.id} erased \\(data-subject-${c.id} v1\\)`));
    }

    for (const c of erased) {
      for (const orderId of c.orders) {
        const events = await caller.readStream('order-header', orderId);
        const placed = JSON.parse(events.find((e) => e.type === 'OrderPlaced')!.data) as Record<string, unknown>;
        expect(placed).toMatchObject({ customerId: c.id, customerEmail: ERASED, shippingAddress: ERASED });
      }
      const updated = (await caller.readStream('order-header', c.orders[0]!)).find((e) => e.type === 'ShippingAddressUpdated')!;
      expect(JSON.parse(updated.data)).toMatchObject({ shippingAddress: ERASED });
    }
    for (const c of kept) {
      const events = await caller.readStream('order-header', c.orders[0]!);
      expect(JSON.parse(events[0]!.data)).toMatchObject({ customerId: c.id, customerEmail: c.email, shippingAddress: address(c, c.line1) });
      expect(JSON.parse(events[1]!.data)).toMatchObject({ customerId: c.id, shippingAddress: address(c, c.newLine1) });
      expect(JSON.parse((await caller.readStream('order-header', c.orders[1]!))[0]!.data)).toMatchObject({ customerEmail: c.email });
    }

    const dump = await dumpAll();
    for (const c of customers) for (const secret of secretsOf(c)) expect(dump).not.toContain(secret);
    // The keys are gone: tombstones only.
    const keys = new pg.Client({ connectionString: cluster.ringUrl });
    await keys.connect();
    const rows = (await keys.query(`SELECT subject_id, wrapped_key IS NULL AS gone FROM subject_keys WHERE subject_id = ANY($1)`, [customers.map((c) => c.id)])).rows as {
      subject_id: string;
      gone: boolean;
    }[];
    await keys.end();
    expect(
      rows
        .filter((r) => r.gone)
        .map((r) => r.subject_id)
        .sort(),
    ).toEqual(erased.map((c) => c.id).sort());
    expect(rows.length).toBe(CUSTOMERS);
    const redis = await redisValues();
    const text = logs();
    const spans = JSON.stringify(receiver.spans);
    expect(receiver.spans.length).toBeGreaterThan(CUSTOMERS); // the processes did export
    for (const c of customers) {
      for (const secret of secretsOf(c)) {
        expect(redis).not.toContain(secret);
        expect(text).not.toContain(secret);
        expect(spans).not.toContain(secret);
      }
    }
  });

  it('leaves nothing of the 10 on the event bus: the relay erased what it had published, and kept the rest', async () => {
    // The relay has published everything (the 90 in plaintext, as subscribers get them) and seen the 10 SubjectErased.
    let bus = await busMessages();
    await expect
      .poll(
        async () => {
          bus = await busMessages();
          return bus.text.split('SubjectErased').length - 1;
        },
        { timeout: 30_000, interval: 250 },
      )
      .toBe(ERASED_COUNT);
    await expect.poll(() => relay.output().split('erased a data subject from the bus').length - 1, { timeout: 10_000 }).toBeGreaterThanOrEqual(ERASED_COUNT);
    bus = await busMessages();
    for (const c of kept) expect(bus.text).toContain(c.email);
    for (const c of erased) for (const secret of secretsOf(c)) expect(bus.text).not.toContain(secret);
  });

  it('delivers the 90 in plaintext, the 10 as "[erased]", and SubjectErased, to a subscriber', async () => {
    // A `*` reader: the data-subject streams belong to no tenant.
    const reader = subscribe(cluster.routerAddress, { from: '', metadata: { authorization: `Bearer ${EVERYTHING}` } });
    const placed = new Map<string, Record<string, unknown>>();
    const erasures = new Set<string>();
    for await (const e of reader) {
      if (e.type === 'OrderPlaced') placed.set(e.aggregateId, e.data as Record<string, unknown>);
      if (e.type === 'SubjectErased') erasures.add((e.data as { subjectId: string }).subjectId);
      if (placed.size >= CUSTOMERS * 2 && erasures.size === ERASED_COUNT) break;
    }
    reader.close();
    expect([...erasures].sort()).toEqual(erased.map((c) => c.id).sort());
    for (const c of kept) for (const o of c.orders) expect(placed.get(o)).toMatchObject({ customerEmail: c.email, shippingAddress: address(c, c.line1) });
    for (const c of erased) for (const o of c.orders) expect(placed.get(o)).toMatchObject({ customerEmail: ERASED, shippingAddress: ERASED });
  });

  it("erasing again changes nothing; an erased customer's orders still decide, but record no new personal data", async () => {
    const before = await dumpAll();
    for (const c of erased.slice(0, 3)) {
      const r = await erase(c.id);
      expect(r.lines.join('')).toMatch(/already erased: nothing to do/);
    }
    const c = erased[0]!;
    const refused = await caller.attempt('PlaceOrder', { orderId: `ord-${tag}-again`, customerId: c.id, customerEmail: c.email, shippingAddress: address(c, c.line1) });
    expect('error' in refused && refused.error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect('error' in refused && refused.error.reason).toBe('BUSINESS_RULE');
    const update = await caller.attempt('UpdateShippingAddress', { orderId: c.orders[0], shippingAddress: address(c, c.line1) });
    expect('error' in update && update.error.code).toBe(grpc.status.FAILED_PRECONDITION);
    // A retry of a command applied before the erasure is still a duplicate (I4), also when its
    // stream is not in memory (the owner restarted) and is first decided as new.
    await cluster.shard(cluster.ownerOf(c.orders[0]!)).restart();
    let retried: Awaited<ReturnType<Clients['attempt']>> | undefined;
    for (let i = 0; i < 50; i++) {
      retried = await caller.attempt('PlaceOrder', { orderId: c.orders[0], commandId: `place-${c.orders[0]}`, customerId: c.id, customerEmail: c.email, shippingAddress: address(c, c.line1) });
      if (!('error' in retried) || retried.error.code !== grpc.status.UNAVAILABLE) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(retried && 'ok' in retried && retried.ok.duplicate).toBe(true);
    // The stream still loads, decides and moves.
    await until('CancelOrder', { orderId: c.orders[1], commandId: `cancel-${c.orders[1]}`, reason: 'erased customer' });
    const after = await dumpAll();
    const subjectRows = (d: string) => d.split('\n').filter((l) => l.includes('SubjectErased')).length;
    expect(subjectRows(after)).toBe(subjectRows(before));
    for (const secret of secretsOf(c)) expect(after).not.toContain(secret);
  });

  it('re-enables a customer with a new key: new orders read back, what was erased stays erased', async () => {
    const c = erased[1]!;
    const lines: string[] = [];
    const out: Output = { tty: false, line: (t) => lines.push(t), error: (t) => lines.push(t) };
    expect(await eraseCommand([c.id, '--reenable', '--address', cluster.routerAddress, '--token', ADMIN], {}, out), lines.join('\n')).toBe(0);
    expect(lines.join('')).toMatch(/re-enabled/);
    const orderId = `ord-${tag}-back`;
    await until('PlaceOrder', { orderId, commandId: `place-${orderId}`, customerId: c.id, customerEmail: c.email, shippingAddress: address(c, c.line1) });
    expect(JSON.parse((await caller.readStream('order-header', orderId))[0]!.data)).toMatchObject({ customerEmail: c.email });
    expect(JSON.parse((await caller.readStream('order-header', c.orders[0]!))[0]!.data)).toMatchObject({ customerEmail: ERASED });
  });
});

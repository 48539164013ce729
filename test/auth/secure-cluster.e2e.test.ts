/**
 * A router and two shards, as processes, with authentication on (a JWKS file
 * and hashed static tokens): every refusal path over the wire, through the
 * router and directly at a shard, and tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { CallError, connect, placeOrder, type Clients } from '../support/grpc.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startProcess } from '../support/processes.js';
import { subscribe } from '../support/subscriber.js';
import { CommandFailedError, ConnectionLostError, createClient } from '../../src/client/index.js';
import { consume } from '../../src/client/consume.js';
import pg from 'pg';
import { createTestDatabase } from '../support/pg.js';
import { testKeys, type TestKeys } from './keys.js';
import { ringCommand } from '../../cli/ring.js';
import { RingView } from '../../src/ring/index.js';
import { expectRejection } from '../support/expect-error.js';

let keys: TestKeys;
let cluster: Cluster;
const tokens: Record<string, string> = {};
const SERVICE_TOKEN = 'svc-token-with-every-scope';

beforeAll(async () => {
  keys = await testKeys();
  const now = Math.floor(Date.now() / 1000);
  tokens.alice = await keys.sign({ sub: 'alice', tenant: 'tenant-a' });
  tokens.bob = await keys.sign({ sub: 'bob', tenant: 'tenant-b' });
  tokens.noPayment = await keys.sign({ sub: 'carol', tenant: 'tenant-a', scope: 'order-header order-lines' });
  tokens.stranger = await keys.sign({ sub: 'mallory', tenant: 'tenant-a' }, { key: 'stranger' });
  tokens.expired = await keys.sign({ sub: 'alice', tenant: 'tenant-a', iat: now - 7200, exp: now - 120 });
  tokens.otherAudience = await keys.sign({ sub: 'alice', tenant: 'tenant-a', aud: 'another-service' });
  tokens.otherIssuer = await keys.sign({ sub: 'alice', tenant: 'tenant-a', iss: 'https://evil.test' });
  // Principals and tenants are recorded with every event: bounded like any other input.
  tokens.longPrincipal = await keys.sign({ sub: 'p'.repeat(300), tenant: 'tenant-a' });
  tokens.badTenant = await keys.sign({ sub: 'alice', tenant: 'tenant-a\nforged' });
  cluster = await startCluster({
    shards: 2,
    spares: 1,
    auth: { ...keys.env, AUTH_TOKENS: tokenEntry(SERVICE_TOKEN, 'ops', '', ['*']) },
    // Everything the processes log, and the router's metrics, are checked for tokens at the end.
    shardEnv: { LOG_LEVEL: 'debug' },
    routerEnv: { LOG_LEVEL: 'debug', METRICS_ADDRESS: '127.0.0.1:0' },
  });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

async function withClient<T>(address: string, token: string | undefined, fn: (c: Clients) => Promise<T>): Promise<T> {
  const c = connect(address, token === undefined ? {} : { token });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const codeOf = async (p: Promise<unknown>): Promise<{ code: grpc.status; reason?: string; message: string }> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof CallError) return err.status;
    throw err;
  }
  throw new Error('expected the call to fail');
};

describe('a secure cluster', () => {
  it.each([
    ['no credentials', undefined],
    ['a token signed by another key', 'stranger'],
    ['an expired token', 'expired'],
    ['a token for another audience', 'otherAudience'],
    ['a token from another issuer', 'otherIssuer'],
    ['a token whose principal is out of bounds', 'longPrincipal'],
    ['a token whose tenant has a control character', 'badTenant'],
  ])('refuses %s with UNAUTHENTICATED, through the router and at a shard, writing nothing', async (_, who) => {
    const token = who === undefined ? undefined : tokens[who];
    for (const address of [cluster.routerAddress, cluster.shards[0]!.address]) {
      const status = await withClient(address, token, (c) => codeOf(c.call('PlaceOrder', placeOrder(`refused-${who}`))));
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
      if (token) expect(status.message).not.toContain(token.slice(-20));
      expect((await withClient(address, token, (c) => codeOf(c.readStream('order-header', 'anything')))).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    for (const s of cluster.shards) {
      expect((await s.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id LIKE 'order-header-refused-%'")).rows[0].n).toBe(0);
    }
  });

  it('refuses a command outside the caller’s scopes with PERMISSION_DENIED', async () => {
    await withClient(cluster.routerAddress, tokens.noPayment, async (c) => {
      await c.call('PlaceOrder', placeOrder('scoped-1'));
      const status = await codeOf(c.call('AuthorizePayment', { orderId: 'scoped-1', commandId: 'auth-1', amountCents: '100', currency: 'EUR' }));
      expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    });
  });

  it('keeps tenants apart: another tenant gets NOT_FOUND for commands and ReadStream, through the router and at the owning shard', async () => {
    const id = 'tenant-a-order-1';
    await withClient(cluster.routerAddress, tokens.alice, (c) => c.call('PlaceOrder', placeOrder(id, { commandId: 'place-1' })));
    const owner = cluster.shard(cluster.ownerOf(id));
    for (const address of [cluster.routerAddress, owner.address]) {
      await withClient(address, tokens.bob, async (c) => {
        for (const attempt of [
          () => c.call('CancelOrder', { orderId: id, reason: 'mine now' }),
          () => c.call('PlaceOrder', placeOrder(id, { commandId: 'place-1' })), // the owner's command id: not its result either
          () => c.readStream('order-header', id),
        ]) {
          expect(await codeOf(attempt())).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'AGGREGATE_NOT_FOUND' });
        }
      });
    }
    // The owner still reads it, with who caused each event; a `*` service principal may cross tenants.
    const events = await withClient(cluster.routerAddress, tokens.alice, (c) => c.readStream('order-header', id));
    expect(events).toHaveLength(1);
    expect(events[0]!.metadata).toMatchObject({ principal: 'alice', tenant: 'tenant-a', command_id: 'place-1', correlation_id: 'place-1' });
    expect(await withClient(owner.address, SERVICE_TOKEN, (c) => c.readStream('order-header', id))).toHaveLength(1);
    const row = await owner.sql.query("SELECT tenant FROM streams WHERE stream_id = 'order-header-' || $1", [id]);
    expect(row.rows[0].tenant).toBe('tenant-a');
    const audit = await owner.sql.query(
      "SELECT metadata->>'principal' AS principal, metadata->>'tenant' AS tenant, metadata->>'correlation_id' AS correlation_id, metadata->>'causation_id' AS causation_id FROM events WHERE stream_id = 'order-header-' || $1",
      [id],
    );
    expect(audit.rows).toEqual([{ principal: 'alice', tenant: 'tenant-a', correlation_id: 'place-1', causation_id: null }]);
  });

  it('records correlation and causation ids from metadata, and refuses malformed ones with INVALID_ARGUMENT', async () => {
    await withClient(cluster.routerAddress, tokens.alice, async (c) => {
      await c.call('PlaceOrder', placeOrder('traced-1'), { metadata: { 'x-correlation-id': 'corr-9', 'x-causation-id': 'cause-9' } });
      const [event] = await c.readStream('order-header', 'traced-1');
      expect(event!.metadata).toMatchObject({ correlation_id: 'corr-9', causation_id: 'cause-9', principal: 'alice' });
      const status = await codeOf(c.call('PlaceOrder', placeOrder('traced-2'), { metadata: { 'x-correlation-id': 'x'.repeat(200) } }));
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(await c.readStream('order-header', 'traced-2')).toEqual([]);
    });
  });

  it('requires a command id on money commands (AuthorizePayment, CapturePayment), and refuses a command id reused for another request', async () => {
    await withClient(cluster.routerAddress, tokens.alice, async (c) => {
      await c.call('PlaceOrder', placeOrder('money-1'));
      const missing = await c.attempt('AuthorizePayment', { orderId: 'money-1', amountCents: '500', currency: 'EUR' });
      // The field violation travels as google.rpc.BadRequest; its text is in the message too.
      expect(missing).toMatchObject({ error: { code: grpc.status.INVALID_ARGUMENT, reason: 'VALIDATION', message: expect.stringMatching(/^command_id: is required/) } });
      const request = { orderId: 'money-1', commandId: 'pay-1', amountCents: '500', currency: 'EUR' };
      await c.call('AuthorizePayment', request);
      expect(await c.call('AuthorizePayment', request)).toMatchObject({ duplicate: true });
      const reused = await c.attempt('AuthorizePayment', { ...request, amountCents: '50000' });
      expect(reused).toMatchObject({ error: { code: grpc.status.FAILED_PRECONDITION, reason: 'COMMAND_ID_REUSED' } });
      const noCaptureId = await c.attempt('CapturePayment', { orderId: 'money-1', amountCents: '100' });
      expect(noCaptureId).toMatchObject({ error: { code: grpc.status.INVALID_ARGUMENT, reason: 'VALIDATION', message: expect.stringMatching(/^command_id: is required/) } });
      const capture = { orderId: 'money-1', commandId: 'cap-1', amountCents: '100' };
      await c.call('CapturePayment', capture);
      expect(await c.call('CapturePayment', capture)).toMatchObject({ duplicate: true });
      expect(await c.attempt('CapturePayment', { ...capture, amountCents: '200' })).toMatchObject({ error: { code: grpc.status.FAILED_PRECONDITION, reason: 'COMMAND_ID_REUSED' } });
      expect((await c.readStream('order-payment', 'money-1')).map((e) => e.type)).toEqual(['PaymentAuthorized', 'PaymentCaptured']);
    });
  });

  it('answers health checks without credentials, on the router and on a shard', async () => {
    const api = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    for (const address of [cluster.routerAddress, cluster.shards[1]!.address]) {
      const health = new api.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        Check: (r: object, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
      };
      try {
        const status = await new Promise<string>((res, rej) => health.Check({ service: '' }, (e, r) => (e ? rej(e) : res(r.status))));
        expect(status).toBe('SERVING');
      } finally {
        health.close();
      }
    }
  });
});

describe('command streams in a secure cluster', () => {
  it('authorize each streamed command on its own, through the router and at a shard', async () => {
    const id = 'streamed-a-1';
    await withClient(cluster.routerAddress, tokens.alice, (c) => c.call('PlaceOrder', placeOrder(id)));
    const owner = cluster.shard(cluster.ownerOf(id));
    for (const [pass, address] of [cluster.routerAddress, owner.address].entries()) {
      // An order of bob's that this address serves (a shard refuses another shard's aggregates).
      const bobs = Array.from({ length: 100 }, (_, i) => `streamed-b-${pass}-${i}`).find((o) => pass === 0 || cluster.ownerOf(o) === owner.id)!;
      const bob = createClient(address, { metadata: { authorization: `Bearer ${tokens.bob}` } });
      const carol = createClient(address, { metadata: { authorization: `Bearer ${tokens.noPayment}` } });
      const nobody = createClient(address);
      try {
        const outcomes = await Promise.allSettled([
          bob.cancelOrder({ orderId: id, reason: 'not mine' }),
          bob.placeOrder(placeOrder(bobs) as never),
          carol.authorizePayment({ orderId: id, commandId: `c-${pass}`, amountCents: '1', currency: 'EUR' }),
          carol.addOrderLine({ orderId: id, lineId: `l-${pass}`, sku: 'S', quantity: 1, unitPriceCents: '1' }),
          nobody.placeOrder(placeOrder('streamed-nobody') as never),
        ]);
        const codes = outcomes.map((o) =>
          o.status === 'fulfilled'
            ? 'OK'
            : o.reason instanceof CommandFailedError
              ? grpc.status[o.reason.code]
              : o.reason instanceof ConnectionLostError
                ? `stream: ${grpc.status[o.reason.cause.code]}`
                : String(o.reason),
        );
        // Without credentials the stream itself is refused.
        expect(codes).toEqual(['NOT_FOUND', 'OK', 'PERMISSION_DENIED', 'OK', 'stream: UNAUTHENTICATED']);
      } finally {
        for (const c of [bob, carol, nobody]) c.close();
      }
    }
  });
});

describe('subscriptions in a secure cluster', () => {
  it('need the read scope, and show a tenant-bound reader only its tenant’s events (a `*` principal sees all)', async () => {
    await withClient(cluster.routerAddress, tokens.bob, (c) => c.call('PlaceOrder', placeOrder('b-sub-1')));
    await withClient(cluster.routerAddress, tokens.alice, (c) => c.call('PlaceOrder', placeOrder('a-sub-1')));
    const bob = subscribe(cluster.routerAddress, { token: tokens.bob });
    const alice = subscribe(cluster.routerAddress, { token: tokens.alice });
    const ops = subscribe(cluster.routerAddress, { token: SERVICE_TOKEN });
    try {
      for (const s of [bob, alice, ops]) await s.until(() => s.caughtUp(), 30_000, 'caught_up');
      const streams = (s: typeof bob) => new Set(s.events.map((e) => e.streamId));
      expect(streams(bob).has('order-header-b-sub-1')).toBe(true);
      expect(bob.events.every((e) => e.metadata?.tenant === 'tenant-b')).toBe(true);
      expect(alice.events.every((e) => e.metadata?.tenant === 'tenant-a')).toBe(true);
      expect(streams(alice).has('order-header-a-sub-1')).toBe(true);
      expect(streams(alice).has('order-header-b-sub-1')).toBe(false);
      expect(streams(ops).has('order-header-b-sub-1') && streams(ops).has('order-header-a-sub-1')).toBe(true);
      // Live events are filtered too.
      await withClient(cluster.routerAddress, tokens.alice, (c) => c.call('PlaceOrder', placeOrder('a-sub-2')));
      await withClient(cluster.routerAddress, tokens.bob, (c) => c.call('PlaceOrder', placeOrder('b-sub-2')));
      await bob.until(() => streams(bob).has('order-header-b-sub-2'), 10_000, 'bob’s live event');
      expect(bob.events.every((e) => e.metadata?.tenant === 'tenant-b')).toBe(true);
    } finally {
      for (const s of [bob, alice, ops]) s.close();
    }
    const noRead = subscribe(cluster.routerAddress, { token: tokens.noPayment! });
    const anonymous = subscribe(cluster.routerAddress);
    try {
      await expectRejection(
        anonymous.until(() => false, 10_000),
        /UNAUTHENTICATED|no credentials/,
      );
      await expectRejection(
        noRead.until(() => false, 10_000),
        /PERMISSION_DENIED|may not read/,
      );
    } finally {
      noRead.close();
      anonymous.close();
    }
  }, 60_000);
});

describe('consumer groups in a secure cluster', () => {
  it('are per tenant: two tenants joining the same group name get a group each, each member every partition, only its events', async () => {
    const seen: Record<string, Set<string>> = { alice: new Set(), bob: new Set() };
    const assigned: Record<string, number> = {};
    const consumers = (['alice', 'bob'] as const).map((who) =>
      consume(cluster.routerAddress, {
        group: 'shared',
        partitions: 4,
        metadata: { authorization: `Bearer ${tokens[who]}` },
        onAssignment: (a) => void (assigned[who] = a.partitions.length),
        handler: (e) => void seen[who]!.add(e.metadata.tenant ?? ''),
      }),
    );
    try {
      const deadline = Date.now() + 20_000;
      while ((assigned.alice !== 4 || assigned.bob !== 4 || seen.alice!.size === 0 || seen.bob!.size === 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(assigned).toEqual({ alice: 4, bob: 4 });
      expect([...seen.alice!]).toEqual(['tenant-a']);
      expect([...seen.bob!]).toEqual(['tenant-b']);
      const ring = new pg.Client({ connectionString: cluster.ringUrl });
      await ring.connect();
      try {
        const names = (await ring.query("SELECT name FROM consumer_groups WHERE name LIKE '%shared' ORDER BY name")).rows.map((r) => r.name);
        expect(names).toEqual(['tenant-a/shared', 'tenant-b/shared']);
      } finally {
        await ring.end();
      }
    } finally {
      for (const c of consumers) await c.stop();
    }
  }, 40_000);
});

describe('long-lived streams', () => {
  it('end a subscription UNAUTHENTICATED when its token expires', async () => {
    const shortLived = await keys.sign({ sub: 'alice', tenant: 'tenant-a', exp: Math.floor(Date.now() / 1000) + 3 });
    const sub = subscribe(cluster.routerAddress, { token: shortLived });
    try {
      await sub.until(() => sub.caughtUp(), 10_000, 'caught_up');
      await expectRejection(
        sub.until(() => false, 15_000, 'the end'),
        /UNAUTHENTICATED|expired/,
      );
    } finally {
      sub.close();
    }
  }, 30_000);
});

describe('tenants after a rebalance', () => {
  it('moves each stream’s tenant with it: another tenant still gets NOT_FOUND at the new owner, the owner goes on', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `moving-${i}`);
    await withClient(cluster.routerAddress, tokens.alice, async (c) => {
      for (const id of ids) await c.call('PlaceOrder', placeOrder(id));
    });
    const spare = cluster.shard('shard-2');
    const out = { tty: false, line: () => {}, error: () => {} };
    expect(await ringCommand(['add', 'shard-2', '--address', spare.address], { RING_DATABASE_URL: cluster.ringUrl }, out)).toBe(0);
    const view = new RingView((await cluster.ringStore.current())!);
    const moved = ids.filter((id) => view.ownerOf(id).id === 'shard-2');
    expect(moved.length).toBeGreaterThan(0);
    const tenants = await spare.sql.query("SELECT DISTINCT tenant FROM streams WHERE stream_id LIKE 'order-header-moving-%'");
    expect(tenants.rows).toEqual([{ tenant: 'tenant-a' }]);
    for (const address of [cluster.routerAddress, spare.address]) {
      await withClient(address, tokens.bob, async (c) => {
        expect(await codeOf(c.call('CancelOrder', { orderId: moved[0]!, reason: 'not yours' }))).toMatchObject({ code: grpc.status.NOT_FOUND });
        expect(await codeOf(c.readStream('order-header', moved[0]!))).toMatchObject({ code: grpc.status.NOT_FOUND });
      });
    }
    await withClient(cluster.routerAddress, tokens.alice, async (c) => {
      expect(await c.call('CancelOrder', { orderId: moved[0]!, reason: 'changed my mind' })).toMatchObject({ version: '2' });
    });
  }, 120_000);
});

describe('secrets', () => {
  it('never appear in a log line or a metric label', async () => {
    const metricsUrl = /metrics (http:\/\/\S+\/metrics)/.exec(cluster.router.output())?.[1];
    expect(metricsUrl).toBeDefined();
    const metrics = await (await fetch(metricsUrl!)).text();
    const outputs = [cluster.router.output(), ...cluster.shards.map((s) => s.process.output()), metrics].join('\n');
    expect(outputs.length).toBeGreaterThan(1000);
    for (const secret of [SERVICE_TOKEN, ...Object.values(tokens)]) {
      expect(outputs).not.toContain(secret);
      // A JWT's signature part alone is a secret's worth too.
      expect(outputs).not.toContain(secret.split('.').pop()!);
    }
  });
});

describe('the start-up gate', () => {
  it.each([
    ['shard/main.ts', (db: string) => ({ DATABASE_URL: db, GRPC_ADDRESS: '127.0.0.1:0' })],
    ['router/main.ts', (db: string) => ({ RING_DATABASE_URL: db, GRPC_ADDRESS: '127.0.0.1:0' })],
  ])(
    '%s refuses to start without an authentication method unless SHARDWRITE_INSECURE=true',
    async (entry, env) => {
      const db = await createTestDatabase('sw_gate');
      try {
        const refused = startProcess(entry, { ...env(db.url), SHARDWRITE_INSECURE: 'false' });
        await expectRejection(refused, /exited with 2[\s\S]*no authentication method is configured/);
        const insecure = await startProcess(entry, { ...env(db.url), SHARDWRITE_INSECURE: 'true' });
        try {
          expect(insecure.output()).toMatch(/INSECURE MODE/);
        } finally {
          await insecure.stop();
        }
      } finally {
        await db.drop();
      }
    },
    60_000,
  );
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { startShardProcess, type ServiceProcess } from '../support/processes.js';

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

/** Versions of a stream, in order, from the database itself. */
async function streamVersions(sql: pg.Pool, streamId: string): Promise<{ version: number; commandId: string }[]> {
  const { rows } = await sql.query(`SELECT version::int AS version, metadata->>'command_id' AS "commandId" FROM events WHERE stream_id = $1 ORDER BY version`, [streamId]);
  return rows;
}

function expectContiguous(versions: { version: number }[]): void {
  expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
}

describe('a hot aggregate', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = new pg.Pool({ connectionString: db.url, max: 2 });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await sql?.end();
    await db?.drop();
  });

  it('serves 64 concurrent clients on one aggregate with every command appended once and no conflict surfaced', async () => {
    const shard = await startShardProcess({ DATABASE_URL: db.url });
    procs.push(shard);
    const setup = connect(shard.address);
    await setup.call('PlaceOrder', placeOrder('hot-1'));
    setup.close();

    const clients: Clients[] = Array.from({ length: 64 }, () => connect(shard.address));
    const acked: string[] = [];
    const failures: string[] = [];
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 15; k++) {
          const commandId = `hot-${i}-${k}`;
          const out = await c.attempt('UpdateShippingAddress', { orderId: 'hot-1', commandId, shippingAddress: address(i) });
          if ('ok' in out) acked.push(commandId);
          else failures.push(`${grpc.status[out.error.code]} ${out.error.reason ?? ''}`);
        }
      }),
    );
    for (const c of clients) c.close();

    expect(failures).toEqual([]);
    const versions = await streamVersions(sql, 'order-header-hot-1');
    expectContiguous(versions);
    expect(versions).toHaveLength(1 + 64 * 15);
    const ids = versions.map((v) => v.commandId).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(acked)).toEqual(new Set(ids));
  });

  it('never forks a stream written by two shard processes on the same database, resolving conflicts by retry', async () => {
    const [a, b] = await Promise.all([startShardProcess({ DATABASE_URL: db.url }), startShardProcess({ DATABASE_URL: db.url })]);
    procs.push(a, b);
    const setup = connect(a.address);
    await setup.call('PlaceOrder', placeOrder('hot-2'));
    setup.close();

    const clients = Array.from({ length: 16 }, (_, i) => connect(i % 2 === 0 ? a.address : b.address));
    const acked = new Map<string, number>();
    const refused: string[] = [];
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 20; k++) {
          const commandId = `two-${i}-${k}`;
          const out = await c.attempt('UpdateShippingAddress', { orderId: 'hot-2', commandId, shippingAddress: address(i) });
          if ('ok' in out) acked.set(commandId, Number(out.ok.version));
          else {
            expect(out.error.code).toBe(grpc.status.ABORTED);
            refused.push(commandId);
          }
        }
      }),
    );
    for (const c of clients) c.close();

    const versions = await streamVersions(sql, 'order-header-hot-2');
    expectContiguous(versions);
    const byCommand = new Map(versions.map((v) => [v.commandId, v.version]));
    // Every acknowledged command is in the stream exactly once, at the version it was told.
    for (const [id, version] of acked) expect(byCommand.get(id)).toBe(version);
    // A refused command wrote nothing.
    for (const id of refused) expect(byCommand.has(id)).toBe(false);
    expect(versions).toHaveLength(1 + acked.size);
    // Most commands got through: the conflicts were resolved by reloading and retrying.
    expect(acked.size).toBeGreaterThan(16 * 20 * 0.9);
  });
});

describe('an overloaded shard', () => {
  let db: TestDatabase;
  let shard: ServiceProcess;

  beforeAll(async () => {
    db = await createTestDatabase();
    shard = await startShardProcess({ DATABASE_URL: db.url, MAX_IN_FLIGHT: '200', MAX_QUEUED_PER_STREAM: '50', OVERLOAD_RETRY_AFTER_MS: '250' });
  });

  afterAll(async () => {
    await shard?.stop();
    await db?.drop();
  });

  function rssKiB(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  it('refuses a flood beyond its queue bounds with RESOURCE_EXHAUSTED and a retry hint, with memory bounded', async () => {
    const client = connect(shard.address);
    await client.call('PlaceOrder', placeOrder('flood'));
    const codes = new Map<string, number>();
    let hint: number | undefined;
    const rssBefore = rssKiB(shard.pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssKiB(shard.pid))), 50);
    for (let wave = 0; wave < 5; wave++) {
      const outcomes = await Promise.all(
        Array.from({ length: 2000 }, (_, i) => client.attempt('UpdateShippingAddress', { orderId: i % 4 === 0 ? 'flood' : `flood-${i % 400}`, shippingAddress: address(i) })),
      );
      for (const o of outcomes) {
        const code = 'ok' in o ? 'OK' : grpc.status[o.error.code];
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if ('error' in o && o.error.code === grpc.status.RESOURCE_EXHAUSTED) {
          expect(o.error.reason).toBe('OVERLOADED');
          hint = o.error.retryAfterMs;
        }
      }
    }
    clearInterval(sampler);
    client.close();
    expect(codes.get('RESOURCE_EXHAUSTED') ?? 0).toBeGreaterThan(0);
    expect(codes.get('OK') ?? 0).toBeGreaterThan(0);
    expect(hint).toBe(250);
    // Only the codes a flood may produce: success, overload, or not-found for orders never placed.
    expect([...codes.keys()].sort()).toEqual(expect.arrayContaining(['OK', 'RESOURCE_EXHAUSTED']));
    for (const code of codes.keys()) expect(['OK', 'RESOURCE_EXHAUSTED', 'NOT_FOUND']).toContain(code);
    // 10,000 requests in flight against bounds of 200 must not grow the heap without bound.
    expect(rssPeak - rssBefore).toBeLessThan(150 * 1024);
    // And the shard still works.
    const after = connect(shard.address);
    expect((await after.call('PlaceOrder', placeOrder('after-flood'))).version).toBe('1');
    after.close();
  });
});

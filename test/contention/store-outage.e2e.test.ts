import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { connect, placeOrder } from '../support/grpc.js';
import { startShardProcess, type ServiceProcess } from '../support/processes.js';
import { startOwnPostgres, type OwnPostgres } from '../support/postgres-process.js';

describe('a shard whose PostgreSQL stops answering', () => {
  let pgServer: OwnPostgres;
  let shard: ServiceProcess;

  beforeAll(async () => {
    pgServer = await startOwnPostgres();
    shard = await startShardProcess({
      DATABASE_URL: pgServer.url,
      STORE_CALL_TIMEOUT_MS: '500',
      STORE_BREAKER_RESET_MS: '500',
      DB_STATEMENT_TIMEOUT_MS: '1000',
      LOAD_TIMEOUT_MS: '500',
    });
  }, 120_000);

  afterAll(async () => {
    await shard?.stop();
    await pgServer?.stop();
  });

  it('fails commands fast while the database is frozen (SIGSTOP) and recovers by itself after SIGCONT', async () => {
    const client = connect(shard.address);
    await client.call('PlaceOrder', placeOrder('outage-0'));

    pgServer.signal('SIGSTOP');
    const frozenAt = Date.now();
    const during: { code: string; ms: number }[] = [];
    const deadlineMs = 2000;
    try {
      for (let i = 0; Date.now() - frozenAt < 4000; i++) {
        const t0 = Date.now();
        const out = await client.attempt('PlaceOrder', placeOrder(`outage-frozen-${i}`), { deadlineMs });
        during.push({ code: 'ok' in out ? 'OK' : grpc.status[out.error.code], ms: Date.now() - t0 });
      }
    } finally {
      pgServer.signal('SIGCONT');
    }
    const frozenFor = Date.now() - frozenAt;

    // Nothing succeeded while frozen, no call outlived its deadline (plus scheduling slack),
    // and once the breaker opened the answers came fast, as UNAVAILABLE.
    expect(during.every((d) => d.code !== 'OK')).toBe(true);
    expect(Math.max(...during.map((d) => d.ms))).toBeLessThan(deadlineMs * 1.25);
    // "Fast" is a generous bound (a tenth of the deadline, not a speed target); the count is what shows the
    // breaker open: waiting on the frozen store, 4 s would hold only two calls.
    const fast = during.filter((d) => d.code === 'UNAVAILABLE' && d.ms < deadlineMs / 10);
    expect(fast.length, JSON.stringify(during)).toBeGreaterThan(20);
    expect(frozenFor).toBeLessThan(20_000);

    // Recovery without restarting anything.
    const recoveredAt = Date.now();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      const out = await client.attempt('PlaceOrder', placeOrder(`outage-after-${i}`), { deadlineMs: 2000 });
      recovered = 'ok' in out;
      if (!recovered) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(true);
    const recoveryMs = Date.now() - recoveredAt;
    expect(recoveryMs).toBeLessThan(10_000);
    const slowest = Math.max(...during.map((d) => d.ms));
    console.log(`[store outage] frozen ${frozenFor} ms: ${during.length} calls, ${fast.length} refused in < ${deadlineMs / 10} ms, slowest ${slowest} ms; recovered ${recoveryMs} ms after SIGCONT`);
    client.close();
  });
});

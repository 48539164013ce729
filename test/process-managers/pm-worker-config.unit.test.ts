import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { PM_WORKER_DEFAULTS, loadPmWorkerConfig } from '../../pm-worker/config.js';
import { DEFAULT_PAYMENT_TIMEOUT_MS, processManagers } from '../../src/process-managers/index.js';

const RING = 'postgres://u:p@localhost:5432/shardwrite_ring';

describe('pm-worker configuration', () => {
  it('takes the documented defaults, the ring database and a 15-minute payment timeout', () => {
    const c = loadPmWorkerConfig({ RING_DATABASE_URL: RING }, processManagers);
    expect(c).toMatchObject({
      source: PM_WORKER_DEFAULTS.source,
      databaseUrl: RING,
      startFrom: 'beginning',
      partitions: 16,
      timeoutScanMs: 1000,
      metricsAddress: '127.0.0.1:9470',
      insecure: false,
      token: undefined,
    });
    expect(c.settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: DEFAULT_PAYMENT_TIMEOUT_MS });
    expect(DEFAULT_PAYMENT_TIMEOUT_MS).toBe(900_000);
  });

  it('reads the payment timeout from PM_PAYMENT_TIMEOUT_MS, or PAYMENT_TIMEOUT_MS, and PM_DATABASE_URL over the ring', () => {
    expect(loadPmWorkerConfig({ RING_DATABASE_URL: RING, PM_PAYMENT_TIMEOUT_MS: '2500' }, processManagers).settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: 2500 });
    expect(loadPmWorkerConfig({ RING_DATABASE_URL: RING, PAYMENT_TIMEOUT_MS: '7000' }, processManagers).settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: 7000 });
    expect(loadPmWorkerConfig({ RING_DATABASE_URL: RING, PM_DATABASE_URL: 'postgres://x/y' }, processManagers).databaseUrl).toBe('postgres://x/y');
    expect(loadPmWorkerConfig({ RING_DATABASE_URL: RING, METRICS_ADDRESS: 'off' }, processManagers).metricsAddress).toBeUndefined();
  });

  it('lists every problem at once', () => {
    let error: unknown;
    try {
      loadPmWorkerConfig({ PM_PAYMENT_TIMEOUT_MS: 'soon', PM_PARTITIONS: '0', PM_START_FROM: 'middle' }, processManagers);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/PM_DATABASE_URL \(or RING_DATABASE_URL\) is required/);
    expect(problems).toMatch(/PM_PAYMENT_TIMEOUT_MS must be a positive integer/);
    expect(problems).toMatch(/PM_PARTITIONS/);
    expect(problems).toMatch(/PM_START_FROM/);
  });
});

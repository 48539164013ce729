import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { PM_WORKER_DEFAULTS, loadPmWorkerConfig } from '../../pm-worker/config.js';
import { DEFAULT_PAYMENT_TIMEOUT_MS, processManagers } from '../../src/process-managers/index.js';

const RING = 'postgres://u:p@localhost:5432/shardwrite_ring';
/** Insecure mode explicitly: these cases are about the worker's own settings (the gate has its own). */
const DEV = { RING_DATABASE_URL: RING, SHARDWRITE_INSECURE: 'true' };

describe('pm-worker configuration', () => {
  it('takes the documented defaults, the ring database and a 15-minute payment timeout', () => {
    const c = loadPmWorkerConfig(DEV, processManagers);
    expect(c).toMatchObject({
      source: PM_WORKER_DEFAULTS.source,
      databaseUrl: RING,
      startFrom: 'beginning',
      partitions: 16,
      timeoutScanMs: 1000,
      metricsAddress: '127.0.0.1:9470',
      insecure: true,
      token: undefined,
    });
    expect(c.settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: DEFAULT_PAYMENT_TIMEOUT_MS });
    expect(DEFAULT_PAYMENT_TIMEOUT_MS).toBe(900_000);
  });

  it('reads the payment timeout from PM_PAYMENT_TIMEOUT_MS, or PAYMENT_TIMEOUT_MS, and PM_DATABASE_URL over the ring', () => {
    expect(loadPmWorkerConfig({ ...DEV, PM_PAYMENT_TIMEOUT_MS: '2500' }, processManagers).settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: 2500 });
    expect(loadPmWorkerConfig({ ...DEV, PAYMENT_TIMEOUT_MS: '7000' }, processManagers).settings.get('order-fulfilment')).toEqual({ paymentTimeoutMs: 7000 });
    expect(loadPmWorkerConfig({ ...DEV, PM_DATABASE_URL: 'postgres://x/y' }, processManagers).databaseUrl).toBe('postgres://x/y');
    expect(loadPmWorkerConfig({ ...DEV, METRICS_ADDRESS: 'off' }, processManagers).metricsAddress).toBeUndefined();
  });

  it('refuses to start without PM_TOKEN and TLS unless insecure mode is chosen explicitly', () => {
    let error: unknown;
    try {
      loadPmWorkerConfig({ RING_DATABASE_URL: RING }, processManagers);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/PM_TOKEN is required/);
    expect(problems).toMatch(/TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required/);
    const secure = loadPmWorkerConfig({ RING_DATABASE_URL: RING, PM_TOKEN: 't', TLS_CERT_FILE: '/tls/c.crt', TLS_KEY_FILE: '/tls/c.key', TLS_CA_FILE: '/tls/ca.crt' }, processManagers);
    expect(secure.insecure).toBe(false);
    expect(secure.tls).toBeDefined();
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
    // Secure by default: without insecure mode, a token and TLS are required.
    expect(problems).toMatch(/PM_TOKEN is required/);
    expect(problems).toMatch(/TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required/);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { RELAY_DEFAULTS, loadRelayConfig } from '../../relay/config.js';
import { expectThrow } from '../support/expect-error.js';

describe('loadRelayConfig', () => {
  it('refuses to start without RELAY_TOKEN unless SHARDWRITE_INSECURE=true', () => {
    expectThrow(() => loadRelayConfig({}), /RELAY_TOKEN is required.*SHARDWRITE_INSECURE=true/);
    expectThrow(() => loadRelayConfig({ RELAY_TOKEN: 't' }), /TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required.*SHARDWRITE_INSECURE=true/);
    expect(loadRelayConfig({ RELAY_TOKEN: 't', TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a' }).insecure).toBe(false);
  });

  it('uses the documented defaults when nothing is set', () => {
    const c = loadRelayConfig({ SHARDWRITE_INSECURE: 'true' });
    expect(c.source).toBe(RELAY_DEFAULTS.source);
    expect(c.group).toBe('nats-relay');
    expect(c.nats).toEqual({
      url: 'nats://127.0.0.1:4222',
      stream: 'SHARDWRITE',
      subjectPrefix: 'shardwrite',
      duplicateWindowMs: 600_000,
      publishTimeoutMs: 5_000,
    });
    expect(c.startFrom).toBe('');
    expect(c.aggregateTypes).toEqual([]);
    expect(c.bus).toBe('nats');
  });

  it('reads every setting', () => {
    const c = loadRelayConfig({
      RELAY_SOURCE: '10.0.0.1:6000',
      RELAY_GROUP: 'relay.test-1',
      RELAY_AGGREGATE_TYPES: 'order-header, order-lines',
      RELAY_EVENT_TYPES: 'OrderPlaced',
      RELAY_START_FROM: 'end',
      RELAY_MAX_UNACKED: '64',
      RELAY_MAX_BATCH: '8',
      NATS_URL: 'nats://127.0.0.1:4223,nats://127.0.0.1:4224',
      NATS_STREAM: 'T_1',
      NATS_SUBJECT_PREFIX: 'test.abc',
      NATS_DUPLICATE_WINDOW_MS: '60000',
      RELAY_TOKEN: 'relay-token',
      TLS_CERT_FILE: '/tls/relay.crt',
      TLS_KEY_FILE: '/tls/relay.key',
      TLS_CA_FILE: '/tls/ca.crt',
    });
    expect(c).toMatchObject({
      source: '10.0.0.1:6000',
      group: 'relay.test-1',
      aggregateTypes: ['order-header', 'order-lines'],
      eventTypes: ['OrderPlaced'],
      startFrom: 'end',
      maxUnacked: 64,
      maxBatch: 8,
      nats: { url: 'nats://127.0.0.1:4223,nats://127.0.0.1:4224', stream: 'T_1', subjectPrefix: 'test.abc', duplicateWindowMs: 60_000 },
    });
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      loadRelayConfig({ RELAY_GROUP: 'bad group', NATS_SUBJECT_PREFIX: 'a.*', NATS_STREAM: 'a.b', NATS_URL: 'http://x', RELAY_BUS: 'kafka', RELAY_MAX_UNACKED: '0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['RELAY_GROUP', 'NATS_SUBJECT_PREFIX', 'NATS_STREAM', 'NATS_URL', 'RELAY_BUS', 'RELAY_MAX_UNACKED']) expect(problems).toContain(name);
  });
});

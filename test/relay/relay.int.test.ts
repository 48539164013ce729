/**
 * The relay (in-process) between a scripted consumer-group service on
 * loopback and the real NATS JetStream: the group session breaks twice, so
 * events past the last acknowledgement are delivered again; JetStream still
 * holds each event once, and the relay acknowledged only what JetStream had
 * confirmed. (The relay against the real service: relay.e2e.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import pino from 'pino';
import { connectNatsBus } from '../../relay/nats-bus.js';
import { startRelay } from '../../relay/relay.js';
import { startScriptedServer, type ScriptedServer } from '../client/scripted-servers.js';

const run = randomBytes(4).toString('hex');
const STREAM = `SW_TEST_RELAYINT_${run}`;
const PREFIX = `swtest.relayint${run}`;
let server: ScriptedServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await connect({ servers: '127.0.0.1:4222' });
  jsm = await jetstreamManager(nc);
  server = await startScriptedServer({ events: 0 }, { partitions: 4, eventsPerPartition: 50, breakAfter: (s) => (s < 2 ? 70 : undefined) });
});

afterAll(async () => {
  await server?.close();
  await jsm?.streams.delete(STREAM).catch(() => {});
  await nc?.close();
});

describe('the relay', () => {
  it('publishes every delivered event once although the group redelivers after broken sessions', async () => {
    const log = pino({ level: 'silent' });
    const bus = await connectNatsBus({ url: 'nats://127.0.0.1:4222', stream: STREAM, subjectPrefix: PREFIX, duplicateWindowMs: 60_000, publishTimeoutMs: 2_000 }, log);
    const relay = startRelay(
      { source: server.address, group: 'relay-int', member: 'm', aggregateTypes: [], eventTypes: [], startFrom: '', maxUnacked: 64, maxBatch: 16, subjectPrefix: PREFIX },
      bus,
      log,
    );
    await expect.poll(async () => (await jsm.streams.info(STREAM).catch(() => undefined))?.state.messages ?? 0, { timeout: 20_000 }).toBe(200);
    await expect.poll(() => server.acks.flat().filter((a) => a.endsWith(':49')).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    await relay.stop();
    expect(server.joins).toBeGreaterThanOrEqual(3);
    expect(relay.published).toBeGreaterThanOrEqual(200); // redelivered ones were published again: JetStream kept one
    const info = await jsm.streams.info(STREAM);
    expect(info.state.messages).toBe(200);
    expect(info.config.subjects).toEqual([`${PREFIX}.>`]);
    const first = await jsm.streams.getMessage(STREAM, { seq: info.state.first_seq });
    expect(first!.subject).toMatch(new RegExp(`^${PREFIX.replace('.', '\\.')}\\.order-header\\.o0$`));
    expect(first!.header.get('Nats-Msg-Id')).toMatch(/^e\d+$/);
  });
});

/**
 * The relay against real processes and the real NATS JetStream: under load,
 * NATS is made unreachable for 5 s (a TCP proxy between the relay and
 * 127.0.0.1:4222 is cut), and later the relay itself is SIGKILLed and
 * started again. JetStream ends holding exactly the committed events — each
 * once, compared by event id — each subject in stream-version order.
 * The run uses a stream and subject prefix of its own, deleted afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startLoad, type Ledger } from '../support/ledger.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { readCommitted, type CommittedEvent } from '../support/committed.js';

const NATS = '127.0.0.1:4222';
const run = randomBytes(4).toString('hex');
const STREAM = `SW_TEST_RELAY_${run}`;
const PREFIX = `swtest.relay${run}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stored {
  readonly id: string;
  readonly subject: string;
  readonly streamId: string;
  readonly version: number;
}

let cluster: Cluster;
let proxy: TcpProxy;
let nc: NatsConnection;
let jsm: JetStreamManager;
const relays: ServiceProcess[] = [];
let ledger: Ledger;
let committed: CommittedEvent[];
let stored: Stored[];

const relayEnv = () => ({
  RELAY_SOURCE: cluster.routerAddress,
  RELAY_GROUP: `relay-${run}`,
  NATS_URL: `nats://${proxy.address}`,
  NATS_STREAM: STREAM,
  NATS_SUBJECT_PREFIX: PREFIX,
  NATS_PUBLISH_TIMEOUT_MS: '1000',
  LOG_LEVEL: 'warn',
});

async function startRelay(): Promise<ServiceProcess> {
  const p = await startProcess('relay/main.ts', relayEnv(), /relay (following) /);
  relays.push(p);
  return p;
}

async function readStream(): Promise<Stored[]> {
  const info = await jsm.streams.info(STREAM).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const out: Stored[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(STREAM, { seq });
    if (!m) continue;
    const e = m.json<{ streamId: string; version: number }>();
    out.push({ id: m.header.get('Nats-Msg-Id'), subject: m.subject, streamId: e.streamId, version: e.version });
  }
  return out;
}

beforeAll(async () => {
  cluster = await startCluster({ shards: 3 });
  proxy = await startTcpProxy(NATS);
  nc = await connect({ servers: NATS });
  jsm = await jetstreamManager(nc);
  let relay = await startRelay();

  const load = startLoad({ target: cluster.routerAddress, prefix: `relay-${run}`, clients: 16, ordersPerClient: 4 });
  await sleep(2000);
  proxy.cut(); // NATS unreachable for 5 s under load
  await sleep(5000);
  proxy.resume();
  await sleep(2000);
  relay.signal('SIGKILL'); // the relay down, then back: it resumes after its last acknowledgement
  await relay.exited;
  await sleep(1000);
  relay = await startRelay();
  await sleep(2000);
  ledger = await load.stop();

  committed = await readCommitted(cluster.stores(), `%relay-${run}%`);
  // Converged: JetStream holds as many of the run's events as were committed, and stays there.
  const deadline = Date.now() + 60_000;
  let previous = -1;
  for (;;) {
    // The stream is this run's alone: its message count is the run's events.
    const count = (await jsm.streams.info(STREAM).catch(() => undefined))?.state.messages ?? 0;
    if ((count >= committed.length && count === previous) || Date.now() > deadline) break;
    previous = count;
    await sleep(1000);
  }
  stored = await readStream();
}, 240_000);

afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop(5000)));
  await jsm?.streams.delete(STREAM).catch(() => {});
  await nc?.close();
  await proxy?.close();
  await cluster?.close();
});

describe('the relay to NATS JetStream, with NATS unreachable for 5 s and the relay killed under load', () => {
  it('ends with JetStream holding exactly the committed events, each once', () => {
    expect(ledger.acks.length).toBeGreaterThan(100);
    expect(committed.length).toBeGreaterThan(0);
    const ids = stored.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(committed.map((e) => e.eventId)));
  });

  it('publishes each event on <prefix>.<aggregate_type>.<aggregate_id>, each subject in version order', () => {
    const bySubject = new Map<string, number[]>();
    for (const m of stored) {
      const [, type, id] = /^order-(header|lines|payment)-(.+)$/.exec(m.streamId) ?? [];
      expect(m.subject).toBe(`${PREFIX}.order-${type}.${id}`);
      (bySubject.get(m.subject) ?? bySubject.set(m.subject, []).get(m.subject)!).push(m.version);
    }
    for (const versions of bySubject.values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
  });
});

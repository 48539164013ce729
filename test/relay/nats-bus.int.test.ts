/**
 * The JetStream bus against the real NATS server at 127.0.0.1:4222 (each
 * run on a stream and subject prefix of its own, deleted afterwards):
 * de-duplication by event id, order per subject, and publishing again after
 * NATS was unreachable (through a TCP proxy that is cut).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import pino from 'pino';
import { connectNatsBus } from '../../relay/nats-bus.js';
import { DATA_SUBJECT_HEADER, type BusMessage, type EventBus } from '../../relay/bus.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { expectRejection } from '../support/expect-error.js';

const NATS = '127.0.0.1:4222';
const run = randomBytes(4).toString('hex');
const stream = `SW_TEST_BUS_${run}`;
const prefix = `swtest.bus${run}`;
const log = pino({ level: 'silent' });

let nc: NatsConnection;
let jsm: JetStreamManager;
let proxy: TcpProxy;
let bus: EventBus;

beforeAll(async () => {
  nc = await connect({ servers: NATS });
  jsm = await jetstreamManager(nc);
  proxy = await startTcpProxy(NATS);
  bus = await connectNatsBus({ url: `nats://${proxy.address}`, stream, subjectPrefix: prefix, duplicateWindowMs: 60_000, publishTimeoutMs: 1_000 }, log);
});

afterAll(async () => {
  await bus?.close().catch(() => {});
  await proxy?.close();
  await jsm?.streams.delete(stream).catch(() => {});
  await nc?.close();
});

const message = (id: string, aggregate: string, n: number): BusMessage => ({
  id,
  subject: `${prefix}.order-header.${aggregate}`,
  payload: Buffer.from(JSON.stringify({ n })),
  headers: { 'Shardwrite-Version': String(n) },
});

async function stored(): Promise<{ id: string; subject: string; n: number }[]> {
  const info = await jsm.streams.info(stream);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    out.push({ id: m.header.get('Nats-Msg-Id'), subject: m.subject, n: m.json<{ n: number }>().n });
  }
  return out;
}

describe('the NATS JetStream bus', () => {
  it('creates the stream with the duplicate window and stores a republished event once', async () => {
    await bus.publish([message('a1', 'a', 1), message('b1', 'b', 1), message('a2', 'a', 2)]);
    await bus.publish([message('a1', 'a', 1), message('a2', 'a', 2), message('a3', 'a', 3)]);
    const info = await jsm.streams.info(stream);
    expect(info.config.subjects).toEqual([`${prefix}.>`]);
    expect(info.config.duplicate_window).toBe(60_000 * 1_000_000);
    expect((await stored()).map((m) => m.id)).toEqual(['a1', 'b1', 'a2', 'a3']);
  });

  it('keeps each subject in the order given', async () => {
    const batch = Array.from({ length: 60 }, (_, i) => message(`o${i}`, `agg${i % 3}`, Math.floor(i / 3)));
    await bus.publish(batch);
    const all = (await stored()).filter((m) => m.id.startsWith('o'));
    for (let k = 0; k < 3; k++) {
      expect(all.filter((m) => m.subject.endsWith(`agg${k}`)).map((m) => m.n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    }
  });

  it('fails while NATS is unreachable and publishes once it is back, without duplicates', async () => {
    proxy.cut();
    await expectRejection(bus.publish([message('x1', 'x', 1)]));
    proxy.resume();
    // The client reconnects by itself; the caller retries the batch, as the relay does.
    await expect
      .poll(
        async () =>
          bus.publish([message('x1', 'x', 1), message('x2', 'x', 2)]).then(
            () => true,
            () => false,
          ),
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
    const xs = (await stored()).filter((m) => m.subject.endsWith('.x'));
    expect(xs.map((m) => m.id)).toEqual(['x1', 'x2']);
  });

  it("erases every message that carries a data subject's personal data, and nothing else; again is a no-op", async () => {
    const carrying = (id: string, aggregate: string, n: number, subject: string): BusMessage => {
      const m = message(id, aggregate, n);
      return { ...m, headers: { ...m.headers, [DATA_SUBJECT_HEADER]: subject } };
    };
    await bus.publish([carrying('e1', 'ea', 1, 'cust-9'), message('e2', 'ea', 2), carrying('e3', 'eb', 1, 'cust-8'), carrying('e4', 'ec', 1, 'cust-9')]);
    const before = (await stored()).map((m) => m.id);
    expect(await bus.erase('cust-9')).toBe(2);
    const after = (await stored()).map((m) => m.id);
    expect(after).toEqual(before.filter((id) => id !== 'e1' && id !== 'e4'));
    expect(await bus.erase('cust-9')).toBe(0);
    expect(await bus.erase('nobody')).toBe(0);
    expect((await stored()).map((m) => m.id)).toEqual(after);
  });
});

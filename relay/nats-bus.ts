/**
 * The NATS JetStream `EventBus` (`@nats-io/transport-node` and
 * `@nats-io/jetstream` 3.x). Each message is published with `Nats-Msg-Id` =
 * the event id, into a stream whose duplicate window makes a republished
 * event a no-op: the relay is at-least-once, JetStream's copy exactly once
 * (within the window).
 */
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { DATA_SUBJECT_HEADER, type BusMessage, type EventBus } from './bus.js';

export interface NatsBusSettings {
  /** `nats://host:port` (comma-separated for a cluster). */
  readonly url: string;
  /** The JetStream stream that holds the events; created when missing. */
  readonly stream: string;
  /** Its subjects are `<prefix>.>`. */
  readonly subjectPrefix: string;
  /** The stream's de-duplication window: a republished event within it is not stored again. */
  readonly duplicateWindowMs: number;
  /** How long one publish waits for JetStream's acknowledgement. */
  readonly publishTimeoutMs: number;
}

/** Messages an erasure's scan reads per fetch. @default 1000 */
export const ERASE_SCAN_BATCH = 1000;

/** Waits between reconnect attempts to NATS (the client adds up to 100 ms of jitter). @default 250 */
export const NATS_RECONNECT_WAIT_MS = 250;

/**
 * Connects (waiting for NATS when it is not up yet, then reconnecting for
 * ever) and returns the bus. The stream is created or brought to these
 * settings before the first publish, and again after a failed one, so a
 * JetStream that lost it or came up late is set up again.
 */
export async function connectNatsBus(settings: NatsBusSettings, log: Logger): Promise<EventBus> {
  const nc: NatsConnection = await connect({
    servers: settings.url.split(','),
    name: 'shardwrite-relay',
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: NATS_RECONNECT_WAIT_MS,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type, server: s.server }, `NATS ${s.type}`);
    }
  })().catch(() => {});
  const js: JetStreamClient = jetstream(nc, { timeout: settings.publishTimeoutMs });
  let ensured: Promise<void> | undefined;
  const ensure = () =>
    (ensured ??= ensureStream(nc, settings).catch((err: unknown) => {
      ensured = undefined;
      throw err;
    }));

  const publishInOrder = async (messages: readonly BusMessage[]) => {
    for (const m of messages) {
      const h = headers();
      for (const [k, v] of Object.entries(m.headers)) h.set(k, v);
      const ack = await js.publish(m.subject, m.payload, { msgID: m.id, headers: h, timeout: settings.publishTimeoutMs });
      // A subject captured by some other stream would be "acknowledged" there: never count that as ours.
      if (ack.stream !== settings.stream) throw new Error(`${m.subject} was stored by stream ${ack.stream}, not ${settings.stream}`);
    }
  };

  return {
    description: `nats ${settings.url} stream ${settings.stream} subjects ${settings.subjectPrefix}.>`,
    async publish(messages) {
      await ensure();
      // One chain per subject keeps each stream's events in order in JetStream
      // (a failed publish is retried before the next one of its subject);
      // different subjects go out together.
      const bySubject = new Map<string, BusMessage[]>();
      for (const m of messages) (bySubject.get(m.subject) ?? bySubject.set(m.subject, []).get(m.subject)!).push(m);
      const results = await Promise.allSettled([...bySubject.values()].map(publishInOrder));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        ensured = undefined;
        throw failed.reason;
      }
    },
    async erase(dataSubject) {
      await ensure();
      const jsm = await jetstreamManager(nc, { timeout: settings.publishTimeoutMs });
      const info = await jsm.streams.info(settings.stream);
      if (info.state.messages === 0) return 0;
      // A scan of the headers only (the subject names an aggregate, not a person), up to what the
      // stream held when it began; messages deleted meanwhile (another erasure) end it by a fetch that finds nothing.
      const last = info.state.last_seq;
      const consumer = await js.consumers.get(settings.stream, { headers_only: true });
      const found: number[] = [];
      for (let done = false; !done;) {
        let seen = 0;
        for await (const m of await consumer.fetch({ max_messages: ERASE_SCAN_BATCH, expires: settings.publishTimeoutMs })) {
          seen++;
          if (m.headers?.get(DATA_SUBJECT_HEADER) === dataSubject) found.push(m.seq);
          if (m.seq >= last) done = true;
        }
        if (seen === 0) done = true;
      }
      // erase: JetStream overwrites the message on disk, not only marks it deleted.
      for (const seq of found) await jsm.streams.deleteMessage(settings.stream, seq, true).catch(notFound);
      return found.length;
    },
    async close() {
      await nc.drain();
    },
  };
}

/** Creates the stream, or updates its subjects and duplicate window when they differ. */
export async function ensureStream(nc: NatsConnection, settings: NatsBusSettings): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: settings.publishTimeoutMs });
  const subjects = [`${settings.subjectPrefix}.>`];
  const window = nanos(settings.duplicateWindowMs);
  try {
    const info = await jsm.streams.info(settings.stream);
    const c = info.config;
    if (!subjects.every((s) => c.subjects?.includes(s)) || c.duplicate_window !== window) {
      await jsm.streams.update(settings.stream, { ...c, subjects: [...new Set([...(c.subjects ?? []), ...subjects])], duplicate_window: window });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    await jsm.streams.add({ name: settings.stream, subjects, duplicate_window: window });
  }
}

/** A message deleted meanwhile (by an erasure that ran at once) is gone as wanted. */
function notFound(err: unknown): boolean {
  if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return false;
  throw err;
}

/**
 * The relay: a consumer group (the client's `consume()`) whose handler
 * publishes each partition's events to an `EventBus` and acknowledges them
 * only once the bus confirmed them. It sees only committed events (the
 * service delivers nothing else), so it never publishes an uncommitted one;
 * a crash or a broken connection makes the service deliver the
 * unacknowledged events again, which the bus de-duplicates by event id.
 */
import type { Logger } from 'pino';
import { consume, type Consumer, type ReceivedEvent } from '../src/client/index.js';
import { erasedSubject, toBusMessage, type EventBus } from './bus.js';
import type { RelayConfig } from './config.js';
import type { TlsSettings } from '../src/grpc/tls.js';

/**
 * How long after an erasure the relay erases the subject from the bus once
 * more: an event read before the subject's key was destroyed (plaintext) may
 * still be on its way to the bus in another partition's batch. @default 10000
 */
export const ERASE_AGAIN_AFTER_MS = 10_000;

/** How often the relay logs what it published. @default 10000 */
export const RELAY_STATS_INTERVAL_MS = 10_000;

export interface Relay {
  /** Events the bus confirmed (a redelivered event counts again). */
  readonly published: number;
  /** Publishes that failed and were retried. */
  readonly failures: number;
  /** Resolves when the relay stopped; rejects when the service refused the group. */
  readonly stopped: Promise<void>;
  /** Finishes the publishes in flight, acknowledges them, leaves the group, closes the bus. */
  stop(): Promise<void>;
}

export type RelaySettings = Pick<RelayConfig, 'source' | 'group' | 'member' | 'aggregateTypes' | 'eventTypes' | 'startFrom' | 'maxUnacked' | 'maxBatch'> & {
  readonly subjectPrefix: string;
  readonly token?: string | undefined;
  readonly tls?: TlsSettings | undefined;
};

export function startRelay(settings: RelaySettings, bus: EventBus, log: Logger): Relay {
  let published = 0;
  let failures = 0;
  let lastLogged = 0;
  const consumer: Consumer = consume(settings.source, {
    group: settings.group,
    member: settings.member,
    aggregateTypes: settings.aggregateTypes,
    eventTypes: settings.eventTypes,
    startFrom: settings.startFrom,
    maxUnacked: settings.maxUnacked,
    maxBatch: settings.maxBatch,
    ...(settings.token ? { metadata: { authorization: `Bearer ${settings.token}` } } : {}),
    ...(settings.tls ? { tls: settings.tls } : {}),
    batchHandler: async (events: readonly ReceivedEvent[]) => {
      await bus.publish(events.map((e) => toBusMessage(settings.subjectPrefix, e)));
      published += events.length;
      // Before the acknowledgement: an erasure interrupted here is done again on redelivery.
      for (const subject of events.map(erasedSubject)) {
        if (subject === undefined) continue;
        const erased = await bus.erase(subject);
        log.info({ subject, messages: erased }, 'erased a data subject from the bus');
        setTimeout(() => void bus.erase(subject).catch((err: unknown) => log.warn({ err, subject }, 'erasing again failed')), ERASE_AGAIN_AFTER_MS).unref();
      }
    },
    onAssignment: (a) => log.info({ memberId: a.memberId, partitions: a.partitions, of: a.partitionCount }, 'relay assignment'),
    onError: (err, where) => {
      if (where.kind === 'handler') failures++;
      // One line per failure streak is enough while the bus is down.
      if (where.kind === 'session' || where.attempt === 1 || where.attempt % 20 === 0) {
        log.warn({ err: err instanceof Error ? err.message : String(err), ...where }, where.kind === 'handler' ? 'publish failed; retrying' : 'group session broke; rejoining');
      }
    },
  });
  const timer = setInterval(() => {
    if (published === lastLogged) return;
    log.info({ published, failures, partitions: consumer.partitions.length }, 'relay progress');
    lastLogged = published;
  }, RELAY_STATS_INTERVAL_MS);
  timer.unref();
  const stopped = consumer.stopped.finally(async () => {
    clearInterval(timer);
    await bus.close().catch((err: unknown) => log.warn({ err }, 'closing the bus failed'));
  });
  stopped.catch(() => {});
  return {
    get published() {
      return published;
    },
    get failures() {
      return failures;
    },
    stopped,
    async stop() {
      await consumer.stop();
      await stopped.catch(() => {});
    },
  };
}

/**
 * `consume()`: one member of a durable consumer group
 * (`ConsumerGroupService.Consume`). It runs a handler for each event of the
 * partitions the service assigns to it — in order within a partition, the
 * partitions concurrently — and acknowledges an event only after its handler
 * resolved.
 *
 * ```ts
 * const consumer = consume('127.0.0.1:50051', {
 *   group: 'order-summary',
 *   aggregateTypes: ['order-header'],
 *   handler: async (event) => { await project(event); },
 * });
 * process.on('SIGTERM', () => void consumer.stop());
 * await consumer.stopped;
 * ```
 *
 * Delivery is at least once. A handler that throws is retried on the same
 * event (with backoff, the partition waiting) until it succeeds, the
 * partition is taken away, or the consumer stops: an event is never skipped.
 * When the session breaks, the consumer lets the handlers already running
 * finish, then joins again after a capped, jittered backoff; the service
 * resumes each partition after its last acknowledgement, so the events whose
 * acknowledgement was lost are delivered again — handlers must be idempotent
 * (see examples/order-summary for one way).
 */
import * as grpc from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { loadApi } from '../grpc/proto.js';
import { credentialsOf, type TlsOptions } from './credentials.js';
import type { RpcStatus } from '../grpc/status.js';
import type { ConsumerGroupServiceClient } from '../generated/shardwrite/v1/ConsumerGroupService.js';
import type { ConsumeRequest } from '../generated/shardwrite/v1/ConsumeRequest.js';
import type { ConsumeResponse__Output } from '../generated/shardwrite/v1/ConsumeResponse.js';
import { isRetryable, toReceivedEvent, type ReceivedEvent } from './events.js';
import { ReconnectExhaustedError, SubscriptionRefusedError, pause, reconnectDelay, statusFromObject, type ReconnectOptions } from './reconnect.js';

/** Most events given to one `batchHandler` call. @default 64 */
export const CONSUME_MAX_BATCH = 64;
/** How long `stop()` waits for the service to close the session after the last acks. @default 5000 */
export const CONSUME_STOP_TIMEOUT_MS = 5_000;
/** Retries of a failing handler: backoff base and cap (full jitter). @default 100, 10000 */
export const HANDLER_RETRY_BASE_MS = 100;
export const HANDLER_RETRY_CAP_MS = 10_000;

/** Where an event came from within the group. */
export interface DeliveryContext {
  readonly partition: number;
  /** 1 on the first try of this event (or batch) in this session, then 2, 3, … after the handler threw. */
  readonly attempt: number;
}

export interface ConsumeOptions {
  /** The group's name, `[A-Za-z0-9._-]{1,100}`. */
  readonly group: string;
  /** A name for the service's logs and metrics; default the host's name and pid. */
  readonly member?: string;
  /** The group's filters (fixed by the group's first join); empty = all. */
  readonly aggregateTypes?: readonly string[];
  readonly eventTypes?: readonly string[];
  /** Where a new group starts: `''` = the beginning (the default), `'end'` = from its creation on. */
  readonly startFrom?: '' | 'end';
  /** Events delivered and not yet acknowledged before the service waits (server default 256 when unset). */
  readonly maxUnacked?: number;
  /** Partitions of a new group (server default 16 when unset). */
  readonly partitions?: number;
  /** Runs once per event; the event is acknowledged when it resolves. Give this or `batchHandler`. */
  readonly handler?: (event: ReceivedEvent, context: DeliveryContext) => unknown;
  /**
   * Runs once per run of consecutive events of one partition (at most
   * `maxBatch`); all of them are acknowledged when it resolves. For sinks
   * that write in batches, such as the relay.
   */
  readonly batchHandler?: (events: readonly ReceivedEvent[], context: DeliveryContext) => unknown;
  /** Default {@link CONSUME_MAX_BATCH}. */
  readonly maxBatch?: number;
  /** Aborting it stops the consumer, as `stop()` does. */
  readonly signal?: AbortSignal;
  /** Told of every new assignment (also the first one of each session). */
  readonly onAssignment?: (assignment: { memberId: string; partitions: readonly number[]; partitionCount: number }) => void;
  /** Told of every handler failure (before its retry) and every broken session (before reconnecting). */
  readonly onError?: (error: unknown, where: { kind: 'handler'; partition: number; attempt: number } | { kind: 'session'; status: RpcStatus; delayMs: number }) => void;
  readonly reconnect?: ReconnectOptions;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Explicit channel credentials (win over `tls`). */
  readonly credentials?: grpc.ChannelCredentials;
  /** TLS: the CA file to trust, and a client certificate for mutual TLS; unset (and no `credentials`) = plaintext. */
  readonly tls?: TlsOptions;
}

export interface Consumer {
  /**
   * Resolves when the consumer has stopped (`stop()` or the signal); rejects
   * with `SubscriptionRefusedError` when the service refuses the join (bad
   * group name, filters that differ from the group's, credentials), or
   * `ReconnectExhaustedError`.
   */
  readonly stopped: Promise<void>;
  /**
   * Lets the handlers running finish, acknowledges them, closes the session
   * (the service hands this member's partitions over) and resolves when done.
   * Events received and not handled yet are left to the next member.
   */
  stop(): Promise<void>;
  /** This member's id in the group, once assigned. */
  readonly memberId: string | undefined;
  readonly partitions: readonly number[];
  /** Events whose handler resolved. */
  readonly handled: number;
  /** Sessions opened (1 + reconnects). */
  readonly sessions: number;
}

type SessionOutcome = { readonly kind: 'stopped' } | { readonly kind: 'lost'; readonly status: RpcStatus } | { readonly kind: 'refused'; readonly status: RpcStatus };

interface Delivery {
  readonly event: ReceivedEvent;
  readonly ackId: string;
}

/** Joins `group` at `address` and runs the handler until stopped; see the module comment. */
export function consume(address: string, options: ConsumeOptions): Consumer {
  if ((options.handler === undefined) === (options.batchHandler === undefined)) {
    throw new TypeError('consume needs exactly one of handler and batchHandler');
  }
  const api = loadApi();
  const stub: ConsumerGroupServiceClient = new api.shardwrite.v1.ConsumerGroupService(address, credentialsOf(options));
  const maxBatch = options.batchHandler ? Math.max(1, options.maxBatch ?? CONSUME_MAX_BATCH) : 1;
  const run = options.batchHandler ?? ((events: readonly ReceivedEvent[], ctx: DeliveryContext) => options.handler!(events[0]!, ctx));
  const stopping = new AbortController();
  const state = { memberId: undefined as string | undefined, partitions: [] as readonly number[], handled: 0, sessions: 0 };
  /** Reconnect attempts in a row since a session last delivered something. */
  let attempts = 0;

  /** One `Consume` call: its partition queues, its workers and its pending acks. */
  const session = (): Promise<SessionOutcome> =>
    new Promise((settle) => {
      state.sessions++;
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
      const call = stub.consume(md);
      const queues = new Map<number, Delivery[]>();
      const working = new Map<number, Promise<void>>();
      const toAck = new Map<number, string>();
      let assigned = new Set<number>();
      let live = true;
      /** Aborted when this session ends or the consumer stops: a handler's retry wait ends with it. */
      const ended = new AbortController();
      const waitSignal = AbortSignal.any([stopping.signal, ended.signal]);
      let delivered = false;
      let flushing = false;

      const flushAcks = () => {
        flushing = false;
        if (!live || toAck.size === 0) return;
        // Acks are cumulative per partition: the newest id of each says it all.
        const request: ConsumeRequest = { ack: { ackIds: [...toAck.values()] } };
        toAck.clear();
        call.write(request);
      };
      const ack = (partition: number, ackId: string) => {
        toAck.set(partition, ackId);
        if (!flushing) {
          flushing = true;
          setImmediate(flushAcks);
        }
      };

      const work = async (partition: number): Promise<void> => {
        for (;;) {
          const queue = queues.get(partition);
          if (!live || stopping.signal.aborted || !queue || queue.length === 0) return;
          const batch = queue.splice(0, maxBatch);
          const events = batch.map((d) => d.event);
          for (let attempt = 1; ; attempt++) {
            try {
              await run(events, { partition, attempt });
              break;
            } catch (err) {
              options.onError?.(err, { kind: 'handler', partition, attempt });
              await pause(reconnectDelay(attempt - 1, { baseMs: HANDLER_RETRY_BASE_MS, capMs: HANDLER_RETRY_CAP_MS }), waitSignal);
              // Gone or stopping: the unacknowledged events go to whoever holds the partition next.
              if (!live || stopping.signal.aborted || !assigned.has(partition)) return;
            }
          }
          state.handled += events.length;
          if (live && assigned.has(partition)) ack(partition, batch[batch.length - 1]!.ackId);
        }
      };
      const kick = (partition: number) => {
        if (working.has(partition)) return;
        const w = work(partition).finally(() => {
          working.delete(partition);
          // Events may have arrived while the last batch ran.
          if (live && !stopping.signal.aborted && (queues.get(partition)?.length ?? 0) > 0) kick(partition);
        });
        working.set(partition, w);
      };

      const drained = async () => {
        while (working.size > 0) await Promise.allSettled([...working.values()]);
      };

      const onStop = () => {
        // Finish what runs, acknowledge it, then half-close: the service hands the partitions over after these acks.
        void drained().then(() => {
          if (!live) return;
          flushAcks();
          call.end();
          const timer = setTimeout(() => call.cancel(), CONSUME_STOP_TIMEOUT_MS);
          call.once('status', () => clearTimeout(timer));
        });
      };
      stopping.signal.addEventListener('abort', onStop, { once: true });

      call.on('data', (m: ConsumeResponse__Output) => {
        if (!live) return;
        delivered = true;
        if (m.assignment) {
          assigned = new Set(m.assignment.partitions);
          for (const p of [...queues.keys()]) if (!assigned.has(p)) queues.delete(p);
          for (const p of [...toAck.keys()]) if (!assigned.has(p)) toAck.delete(p);
          state.memberId = m.assignment.memberId;
          state.partitions = [...m.assignment.partitions].sort((a, b) => a - b);
          options.onAssignment?.({ memberId: m.assignment.memberId, partitions: state.partitions, partitionCount: m.assignment.partitionCount });
        } else if (m.event?.event) {
          const { partition, ackId } = m.event;
          let event: ReceivedEvent;
          try {
            event = toReceivedEvent(m.event.event);
          } catch {
            // Unreadable here (a version beyond 2^53): end the session rather than skip it; it comes again.
            call.cancel();
            return;
          }
          // An event may come before the assignment that names its partition; the server decides, so it is handled.
          assigned.add(partition);
          let queue = queues.get(partition);
          if (!queue) queues.set(partition, (queue = []));
          queue.push({ event, ackId });
          if (!stopping.signal.aborted) kick(partition);
        }
      });
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => {
        live = false;
        ended.abort();
        stopping.signal.removeEventListener('abort', onStop);
        const status = statusFromObject(s);
        // Handlers still running finish before anything else happens, so a partition never has two at once.
        void drained().then(() => {
          if (stopping.signal.aborted) settle({ kind: 'stopped' });
          else if (s.code === grpc.status.OK) settle({ kind: 'lost', status: { code: grpc.status.UNAVAILABLE, message: 'the server ended the session' } });
          else if (!isRetryable(status.code)) settle({ kind: 'refused', status });
          else settle({ kind: 'lost', status });
          if (delivered) attempts = 0;
        });
      });

      call.write({
        join: {
          group: options.group,
          member: options.member ?? `${hostname()}-${process.pid}`,
          aggregateTypes: [...(options.aggregateTypes ?? [])],
          eventTypes: [...(options.eventTypes ?? [])],
          startFrom: options.startFrom ?? '',
          maxUnacked: options.maxUnacked ?? 0,
          partitions: options.partitions ?? 0,
        },
      });
    });

  const loop = async (): Promise<void> => {
    try {
      while (!stopping.signal.aborted) {
        const outcome = await session();
        if (outcome.kind === 'stopped') return;
        if (outcome.kind === 'refused') throw new SubscriptionRefusedError(outcome.status);
        if (options.reconnect?.maxAttempts !== undefined && attempts >= options.reconnect.maxAttempts) {
          throw new ReconnectExhaustedError(attempts, outcome.status);
        }
        const delayMs = reconnectDelay(attempts++, options.reconnect);
        const { code, message } = outcome.status;
        options.onError?.(new Error(`the group session broke (${grpc.status[code] ?? code}: ${message})`), { kind: 'session', status: outcome.status, delayMs });
        await pause(delayMs, stopping.signal);
      }
    } finally {
      state.memberId = undefined;
      state.partitions = [];
      stub.close();
    }
  };
  const stopped = loop();
  // The caller may only ever call stop(); an unobserved failure is still reported through `stopped`.
  stopped.catch(() => {});
  const stop = async () => {
    stopping.abort();
    await stopped.catch(() => {});
  };
  options.signal?.addEventListener('abort', () => void stop(), { once: true });
  if (options.signal?.aborted) void stop();

  return {
    stopped,
    stop,
    get memberId() {
      return state.memberId;
    },
    get partitions() {
      return state.partitions;
    },
    get handled() {
      return state.handled;
    },
    get sessions() {
      return state.sessions;
    },
  };
}

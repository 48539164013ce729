/**
 * The process-manager worker: for each registered definition, one member of
 * the durable consumer group `pm-<name>` over the definition's source events
 * and its own instance streams, plus a scanner of due timeouts.
 *
 * - A source event correlated to an instance is recorded on it
 *   (`RecordProcessInput`; input id derived from the event's (stream,
 *   version) — its stable identity, also known to a direct read — and the
 *   command id from the process manager, instance and input id, so a
 *   redelivery is a duplicate, and an input id the instance has seen is
 *   refused): acknowledged once recorded, which is
 *   durable. The instance applies inputs one step at a time, in order.
 * - A `StepDecided` on an instance stream is carried out: its timeouts are
 *   armed (rows in `pm_timeouts`), its commands sent in order through the
 *   router with the command ids the instance derived (a redelivered step
 *   re-sends them; the stores answer `duplicate`), then the step is
 *   completed (`CompleteProcessStep`) — or, when a command is refused for
 *   good, the instance is parked. Only then is the event acknowledged.
 *   Transient failures are retried; consume() keeps the partition on this
 *   event until it succeeds, never skipping it.
 * - Every instance event updates `pm_instances` (status for `pm list` and the
 *   metrics).
 * - Due timeouts are recorded on their instance as inputs
 *   (`timeout:<name>:<step>`, so a timeout fires once however often it is
 *   scanned), then their row is deleted; scanned at start and every
 *   `timeoutScanMs`. Before a timeout is recorded, the instance's source
 *   streams are read (ReadStream) and their events recorded: a worker that
 *   lags behind never fires a timeout that an event committed in time
 *   (the payment's authorization) disarms.
 *
 * Partitions are by stream, so one instance's steps are carried out in
 * order by one member; inputs for one instance come from several streams
 * and the instance stream orders them (the shard's per-stream mailbox and
 * optimistic concurrency). A parked or failing instance holds only its own
 * partition's position for the time of a retry, and its later inputs are
 * recorded (acknowledged) without being acted on.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { CommandFailedError, ConnectionLostError, consume, type CommandOptions, type CommandResult, type Consumer, type ReceivedEvent, type ShardwriteClient } from '../src/client/index.js';
import { INPUT_ALREADY_RECORDED, STEP_NOT_IN_FLIGHT, instanceAggregateType, type AnyProcessManager, type PmMethod, type PmTarget, type StepDecided } from '../src/process-managers/index.js';
import type { PgPmStore, StatusRow } from './store.js';
import { loadApi } from '../src/grpc/proto.js';
import { deciderRegistry, modules } from '../src/domain/index.js';
import { withoutPersonalData } from '../src/privacy/personal-data.js';
import { credentialsOf, type TlsOptions } from '../src/client/credentials.js';
import type { EventStoreServiceClient } from '../src/generated/shardwrite/v1/EventStoreService.js';
import type { Event__Output } from '../src/generated/shardwrite/v1/Event.js';

/** Attempts of one command on transient errors before the whole event is retried by consume(). @default 8 */
export const PM_COMMAND_ATTEMPTS = 8;
/** Events of one partition handled together (their streams concurrently). @default 64 */
export const PM_MAX_BATCH = 64;
/** Due timeouts fired per scan. @default 500 */
export const PM_SCAN_BATCH = 500;

/** The instance event types the worker reads. */
const INSTANCE_EVENT_TYPES = ['InputRecorded', 'InputApplied', 'StepDecided', 'StepCompleted', 'Parked', 'Resumed'];

export interface PmWorkerOptions {
  readonly source: string;
  readonly groupPrefix: string;
  readonly member: string;
  readonly startFrom: 'beginning' | 'end';
  readonly partitions: number;
  readonly maxUnacked: number;
  readonly timeoutScanMs: number;
  readonly commandTimeoutMs: number;
  readonly token: string | undefined;
  /** The router's CA (and this worker's certificate, for mutual TLS): the consumer groups and reads use it as the commands do. */
  readonly tls?: TlsOptions | undefined;
  readonly settings: ReadonlyMap<string, unknown>;
}

export interface PmWorker {
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
  /** Fires the due timeouts now (also done on a timer). */
  scanTimeouts(): Promise<number>;
}

/** Every aggregate type's decider, for the personal data each event type declares. */
const deciders = deciderRegistry(modules);

/** The worker's counters and gauges (the gauges read `pm_instances` / `pm_timeouts` on each scrape). */
export function pmMetrics(registry: Registry, store: PgPmStore) {
  const instances = new Gauge({
    name: 'shardwrite_pm_instances',
    help: 'Process-manager instances by status (running = a step in flight, waiting = a timeout armed, parked = failed, awaiting `pm retry`)',
    labelNames: ['process_manager', 'status'],
    registers: [registry],
    async collect() {
      const c = await store.counts();
      this.reset();
      for (const r of c.instances) this.set({ process_manager: r.processManager, status: r.status }, r.count);
    },
  });
  const timeouts = new Gauge({
    name: 'shardwrite_pm_timeouts_armed',
    help: 'Timeouts armed and not yet fired',
    labelNames: ['process_manager'],
    registers: [registry],
    async collect() {
      const c = await store.counts();
      this.reset();
      for (const r of c.timeouts) this.set({ process_manager: r.processManager }, r.count);
    },
  });
  return {
    instances,
    timeouts,
    inputs: new Counter({
      name: 'shardwrite_pm_inputs_total',
      help: 'Inputs recorded on instances, by outcome (recorded, duplicate, refused)',
      labelNames: ['process_manager', 'outcome'],
      registers: [registry],
    }),
    steps: new Counter({ name: 'shardwrite_pm_steps_total', help: 'Steps carried out, by outcome (completed, parked, stale)', labelNames: ['process_manager', 'outcome'], registers: [registry] }),
    commands: new Counter({
      name: 'shardwrite_pm_commands_total',
      help: 'Commands sent, by method and outcome (applied, duplicate, rejected, failed)',
      labelNames: ['process_manager', 'method', 'outcome'],
      registers: [registry],
    }),
    timeoutsFired: new Counter({ name: 'shardwrite_pm_timeouts_fired_total', help: 'Due timeouts recorded on their instance', labelNames: ['process_manager'], registers: [registry] }),
  };
}
export type PmMetrics = ReturnType<typeof pmMetrics>;

/**
 * The input id of a source event: its (stream, version), the event's stable
 * identity (I2; a move keeps it), which the consumer group's delivery and a
 * direct read (`catchUp`) both know.
 */
export function sourceInputId(streamId: string, version: number): string {
  return `ev-${digest(streamId, String(version))}`;
}

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 40);
}

type Outcome = { kind: 'ok'; result: CommandResult } | { kind: 'refused'; error: CommandFailedError };

/** One command RPC of the client. */
export type PmCommandCall = (request: object, options?: CommandOptions) => Promise<CommandResult>;

/** The client methods a command may name without a service (every `PmMethod`: the compiler checks this list). */
const CLIENT_METHODS: Readonly<Record<PmMethod, true>> = {
  placeOrder: true,
  updateShippingAddress: true,
  shipOrder: true,
  cancelOrder: true,
  addOrderLine: true,
  removeOrderLine: true,
  addOrderLines: true,
  authorizePayment: true,
  capturePayment: true,
  markPaymentCaptured: true,
  refundPayment: true,
};

/**
 * How the worker sends a step's command: a client method named alone, or the
 * RPC `method` of the command service `service` through `client.service()`
 * (any registered domain, e.g. inventory). `undefined` when the client has no
 * such command (the instance is then parked: sending it can never succeed).
 */
export function commandCall(client: ShardwriteClient, target: PmTarget): PmCommandCall | undefined {
  if (target.service === undefined) {
    if (!Object.hasOwn(CLIENT_METHODS, target.method)) return undefined;
    const method = target.method;
    return (request, options) => client[method](request, options);
  }
  let commands: Readonly<Record<string, PmCommandCall>>;
  try {
    commands = client.service<object>(target.service) as Readonly<Record<string, PmCommandCall>>;
  } catch {
    return undefined;
  }
  return Object.hasOwn(commands, target.method) ? commands[target.method] : undefined;
}

/** A command's name in metrics and messages: `shipOrder`, `shardwrite.v1.InventoryService/ReserveStock`. */
const labelOf = (c: PmTarget): string => (c.service === undefined ? c.method : `${c.service}/${c.method}`);

/** Whether an error is worth the same command again: anything but a refusal of the request itself. */
function refusal(err: unknown): CommandFailedError | undefined {
  if (!(err instanceof CommandFailedError)) return undefined;
  if (err.reason === 'WRONG_SHARD' || err.reason === 'STREAM_MOVING') return undefined;
  switch (err.code) {
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.NOT_FOUND:
      return err;
    default:
      return undefined;
  }
}

type PmWorkerDeps = { client: ShardwriteClient; store: PgPmStore; log: Logger; metrics: PmMetrics };
type SourceEvent = { aggregateType: string; aggregateId: string; streamId: string; version: number; type: string; data: unknown; rawData: string };
type InputToRecord = { inputId: string; eventType: string; dataJson: string; sourceStreamId: string; sourceVersion: number };

export function startPmWorker(definitions: readonly AnyProcessManager[], options: PmWorkerOptions, deps: PmWorkerDeps): PmWorker {
  return new ProcessManagerWorker(definitions, options, deps);
}

/**
 * One consumer group per process manager (source events become inputs,
 * `StepDecided` events become commands), and the loop that fires due timeouts.
 */
class ProcessManagerWorker implements PmWorker {
  readonly stopped: Promise<void>;
  readonly #byName: Map<string, AnyProcessManager>;
  readonly #stopping = new AbortController();
  readonly #metadata: Record<string, string> | undefined;
  readonly #events: EventStoreServiceClient;
  readonly #consumers: Consumer[];
  readonly #scanLoop: Promise<void>;
  #scanning: Promise<number> | undefined;

  constructor(
    definitions: readonly AnyProcessManager[],
    private readonly options: PmWorkerOptions,
    private readonly deps: PmWorkerDeps,
  ) {
    this.#byName = new Map(definitions.map((d) => [d.name, d]));
    this.#metadata = options.token ? { authorization: `Bearer ${options.token}` } : undefined;
    this.#events = new (loadApi().shardwrite.v1.EventStoreService)(options.source, credentialsOf({ tls: options.tls }));
    this.#consumers = definitions.map((def) => this.consumerOf(def));
    this.#scanLoop = this.scanLoop();
    this.stopped = Promise.all([...this.#consumers.map((c) => c.stopped), this.#scanLoop]).then(() => undefined);
  }

  /** Fires the due timeouts now (also done on a timer); one scan at a time. */
  scanTimeouts(): Promise<number> {
    return (this.#scanning ??= this.scanOnce().finally(() => (this.#scanning = undefined)));
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled(this.#consumers.map((c) => c.stop()));
    await this.#scanLoop;
    await this.#scanning?.catch(() => {});
    this.#events.close();
  }

  private consumerOf(def: AnyProcessManager): Consumer {
    const { options } = this;
    const ownType = instanceAggregateType(def.name);
    return consume(options.source, {
      group: `${options.groupPrefix}-${def.name}`,
      member: options.member,
      aggregateTypes: [...def.sources.aggregateTypes, ownType],
      eventTypes: def.sources.eventTypes.length > 0 ? [...def.sources.eventTypes, ...INSTANCE_EVENT_TYPES] : [],
      startFrom: options.startFrom === 'end' ? 'end' : '',
      partitions: options.partitions,
      maxUnacked: options.maxUnacked,
      signal: this.#stopping.signal,
      ...(this.#metadata ? { metadata: this.#metadata } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      onError: (err, where) => this.deps.log.warn({ err: err instanceof Error ? err.message : String(err), where }, 'process-manager consumer retrying'),
      maxBatch: PM_MAX_BATCH,
      batchHandler: (events) => this.onBatch(def, ownType, events),
    });
  }

  /** Waits `ms`, or less when the worker stops (the listener goes with the wait: the scan loop waits forever). */
  private pause(ms: number): Promise<void> {
    const signal = this.#stopping.signal;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Sends one command, retrying transient failures; a refusal is returned, anything else thrown after the attempts. */
  private async send(call: () => Promise<CommandResult>): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { kind: 'ok', result: await call() };
      } catch (err) {
        const refused = refusal(err);
        if (refused) return { kind: 'refused', error: refused };
        if (attempt >= PM_COMMAND_ATTEMPTS || this.#stopping.signal.aborted) throw err;
        if (!(err instanceof CommandFailedError || err instanceof ConnectionLostError)) throw err;
        await this.pause(Math.min(2000, 50 * 2 ** attempt) * Math.random());
      }
    }
  }

  private async recordInput(def: AnyProcessManager, instanceId: string, input: InputToRecord): Promise<void> {
    const { client, metrics, log } = this.deps;
    const outcome = await this.send(() =>
      client.recordProcessInput(
        {
          processManager: def.name,
          instanceId,
          commandId: `pm-in-${digest(def.name, instanceId, input.inputId)}`,
          inputId: input.inputId,
          eventType: input.eventType,
          dataJson: input.dataJson,
          sourceStreamId: input.sourceStreamId,
          sourceVersion: String(input.sourceVersion),
          settingsJson: JSON.stringify(this.options.settings.get(def.name) ?? null),
        },
        { timeoutMs: this.options.commandTimeoutMs },
      ),
    );
    if (outcome.kind === 'ok') {
      metrics.inputs.inc({ process_manager: def.name, outcome: outcome.result.duplicate ? 'duplicate' : 'recorded' });
      return;
    }
    const e = outcome.error;
    // Already recorded (its command id with other settings, or the instance knows its id): done.
    if (e.reason === 'COMMAND_ID_REUSED' || e.status.message.includes(INPUT_ALREADY_RECORDED)) {
      metrics.inputs.inc({ process_manager: def.name, outcome: 'duplicate' });
      return;
    }
    // An input the service will never accept (e.g. too large): logged and counted, never retried forever.
    metrics.inputs.inc({ process_manager: def.name, outcome: 'refused' });
    log.error({ instanceId, inputId: input.inputId, err: e.message }, 'input refused by the instance');
  }

  private async runStep(def: AnyProcessManager, event: ReceivedEvent): Promise<void> {
    const { store } = this.deps;
    const step = event.data as StepDecided['data'];
    const instanceId = event.aggregateId;
    // Timeouts first: a step that later fails still has them armed, and the retry re-sends only commands.
    await store.arm(def.name, instanceId, step.schedule);
    await store.disarm(
      def.name,
      instanceId,
      step.cancel.map((t) => t.id),
    );
    // Only timeouts: the instance did not wait for this step.
    if (step.commands.length === 0) return;
    const { rejected, failure } = await this.sendStepCommands(def, step);
    await this.completeStep(def, event, step, { rejected, failure });
  }

  /** Sends a step's commands in order, until one is refused for good. */
  private async sendStepCommands(def: AnyProcessManager, step: StepDecided['data']): Promise<{ rejected: number[]; failure: string }> {
    const { client, metrics } = this.deps;
    const rejected: number[] = [];
    for (const [i, c] of step.commands.entries()) {
      const method = labelOf(c);
      const call = commandCall(client, c);
      if (!call) {
        metrics.commands.inc({ process_manager: def.name, method, outcome: 'failed' });
        return { rejected, failure: `${method} (${c.commandId}) is not a command of this service's API` };
      }
      const outcome = await this.send(() => call({ ...c.request, commandId: c.commandId }, { timeoutMs: this.options.commandTimeoutMs }));
      if (outcome.kind === 'ok') {
        metrics.commands.inc({ process_manager: def.name, method, outcome: outcome.result.duplicate ? 'duplicate' : 'applied' });
        continue;
      }
      const e = outcome.error;
      if (e.reason === 'COMMAND_ID_REUSED') {
        metrics.commands.inc({ process_manager: def.name, method, outcome: 'duplicate' });
        continue;
      }
      if (c.tolerateRejection && e.reason === 'BUSINESS_RULE') {
        metrics.commands.inc({ process_manager: def.name, method, outcome: 'rejected' });
        rejected.push(i);
        continue;
      }
      metrics.commands.inc({ process_manager: def.name, method, outcome: 'failed' });
      return { rejected, failure: `${method} (${c.commandId}) refused: ${e.message}`.slice(0, 2000) };
    }
    return { rejected, failure: '' };
  }

  /** Tells the instance how its step went (`CompleteProcessStep`); a step settled already is stale. */
  private async completeStep(def: AnyProcessManager, event: ReceivedEvent, step: StepDecided['data'], result: { rejected: number[]; failure: string }): Promise<void> {
    const { client, metrics, log } = this.deps;
    const { rejected, failure } = result;
    const done = await this.send(() =>
      client.completeProcessStep(
        {
          processManager: def.name,
          instanceId: event.aggregateId,
          commandId: `pm-step-${digest(event.streamId, String(step.step), String(step.attempt))}`,
          step: String(step.step),
          attempt: String(step.attempt),
          failure,
          rejected,
        },
        { timeoutMs: this.options.commandTimeoutMs },
      ),
    );
    if (done.kind === 'refused') {
      // The step was settled already (a redelivery, or a retry began a new attempt).
      if (done.error.status.message.includes(STEP_NOT_IN_FLIGHT) || done.error.reason === 'COMMAND_ID_REUSED') {
        metrics.steps.inc({ process_manager: def.name, outcome: 'stale' });
        return;
      }
      throw done.error;
    }
    metrics.steps.inc({ process_manager: def.name, outcome: failure === '' ? 'completed' : 'parked' });
    if (failure !== '') log.warn({ instance: event.streamId, step: step.step, failure }, 'process-manager instance parked');
  }

  /** Handles one stream's events of a batch, in order. */
  private async onStreamEvents(def: AnyProcessManager, ownType: string, events: readonly ReceivedEvent[]): Promise<void> {
    for (const event of events) {
      if (event.aggregateType === ownType) {
        if (event.type === 'StepDecided') await this.runStep(def, event);
        continue;
      }
      await this.recordSourceEvent(def, event);
    }
  }

  /** Records a source event on its instance (if it has one), under the id of its (stream, version). */
  private async recordSourceEvent(def: AnyProcessManager, event: SourceEvent): Promise<void> {
    const instanceId = def.correlate(event);
    if (instanceId === undefined) return;
    await this.recordInput(def, instanceId, {
      inputId: sourceInputId(event.streamId, event.version),
      eventType: event.type,
      // Process managers decide on facts, never on personal data: the copy on the instance keeps none.
      dataJson: withoutPersonalData(deciders.get(event.aggregateType), event.type, event.rawData),
      sourceStreamId: event.streamId,
      sourceVersion: event.version,
    });
  }

  /** Reads an instance's source streams and records what they hold (see `catchUpStreams`). */
  private async catchUp(def: AnyProcessManager, instanceId: string): Promise<void> {
    for (const source of def.catchUpStreams(instanceId)) {
      const events = await this.readStream(source.aggregateType, source.aggregateId);
      for (const e of events) {
        const version = Number(e.version);
        if (def.sources.eventTypes.length > 0 && !def.sources.eventTypes.includes(e.type)) continue;
        await this.recordSourceEvent(def, {
          aggregateType: source.aggregateType,
          aggregateId: source.aggregateId,
          streamId: e.streamId,
          version,
          type: e.type,
          data: JSON.parse(e.data) as unknown,
          rawData: e.data,
        });
      }
    }
  }

  private readStream(aggregateType: string, aggregateId: string): Promise<Event__Output[]> {
    return new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      if (this.#metadata) for (const [k, v] of Object.entries(this.#metadata)) md.set(k, v);
      const out: Event__Output[] = [];
      const call = this.#events.readStream({ aggregateType, aggregateId, fromVersion: '1' }, md, { deadline: Date.now() + this.options.commandTimeoutMs });
      call.on('data', (e: Event__Output) => out.push(e));
      call.on('error', (err: grpc.ServiceError) => (err.code === grpc.status.NOT_FOUND ? resolve([]) : reject(err)));
      call.on('end', () => resolve(out));
    });
  }

  /**
   * One run of a partition's events: each stream's events in order, the
   * streams concurrently (a partition holds many instances); then the
   * instances' statuses in one statement. Acknowledged when all is done: a
   * failure retries the whole run, which is idempotent.
   */
  private async onBatch(def: AnyProcessManager, ownType: string, events: readonly ReceivedEvent[]): Promise<void> {
    const byStream = new Map<string, ReceivedEvent[]>();
    for (const e of events) {
      const list = byStream.get(e.streamId);
      if (list) list.push(e);
      else byStream.set(e.streamId, [e]);
    }
    await Promise.all([...byStream.values()].map((list) => this.onStreamEvents(def, ownType, list)));
    const statuses: StatusRow[] = [];
    for (const event of events) {
      const data = (event.data ?? {}) as { status?: unknown; reason?: unknown };
      if (event.aggregateType !== ownType || typeof data.status !== 'string') continue;
      statuses.push({
        streamId: event.streamId,
        processManager: def.name,
        instanceId: event.aggregateId,
        status: data.status,
        version: event.version,
        ...(typeof data.reason === 'string' ? { reason: data.reason } : {}),
      });
    }
    await this.deps.store.recordStatuses(statuses);
  }

  private async scanOnce(): Promise<number> {
    const { store, metrics } = this.deps;
    let fired = 0;
    for (;;) {
      const due = await store.due(PM_SCAN_BATCH);
      const known = due.filter((t) => this.#byName.has(t.processManager));
      if (known.length === 0) return fired;
      await Promise.all(
        known.map(async (t) => {
          const def = this.#byName.get(t.processManager)!;
          await this.catchUp(def, t.instanceId);
          await this.recordInput(def, t.instanceId, { inputId: `timeout:${t.timeoutId}`, eventType: 'TimeoutFired', dataJson: '', sourceStreamId: '', sourceVersion: 0 });
          await store.disarm(def.name, t.instanceId, [t.timeoutId]);
          metrics.timeoutsFired.inc({ process_manager: def.name });
          fired++;
        }),
      );
      if (due.length < PM_SCAN_BATCH || this.#stopping.signal.aborted) return fired;
    }
  }

  private async scanLoop(): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      await this.scanTimeouts().catch((err: unknown) => this.deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'timeout scan failed; next scan retries'));
      await this.pause(this.options.timeoutScanMs);
    }
  }
}

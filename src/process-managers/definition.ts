/**
 * How a process manager is written: a pure definition, like a decider. It
 * names the events it reacts to and how each one finds its instance (the
 * correlation id), folds its inputs into a state (`evolve`) and, after each
 * input, says what should happen next (`decide`): commands to send through
 * the normal pipeline and timeouts to arm or disarm.
 *
 * Nothing here does I/O. The runtime (`instance.ts`) keeps each instance as
 * a stream `pm-<name>-<correlation id>` in the store, on the shard that owns
 * the correlation id; the worker (`pm-worker/`) feeds it inputs from a
 * durable consumer group and carries out its decisions.
 *
 * The definition sees, through `evolve`, everything that happened to the
 * instance: the events it correlated, its fired timeouts, and its own
 * outputs (`sent`, `scheduled`, `rejected`), so `decide` can be a function of
 * the state alone and never decide the same thing twice.
 */
import type { ShardwriteClient } from '../client/index.js';

/** The client methods a process manager may send by name alone: the order commands. */
export type PmMethod = Exclude<keyof ShardwriteClient, 'pending' | 'routing' | 'close' | 'service' | 'recordProcessInput' | 'completeProcessStep' | 'retryProcess'>;

/**
 * Which command a process manager sends: one of the client's order methods
 * by name (`{ method: 'shipOrder' }`), or an RPC of any command service of
 * the loaded proto files by the service's full name and the RPC's name as in
 * the proto (`{ service: 'shardwrite.v1.InventoryService', method:
 * 'ReserveStock' }`), sent through the client's `service(name)`, so a process
 * manager can command a domain added later without changes to the runtime.
 */
export type PmTarget = { readonly service?: undefined; readonly method: PmMethod } | { readonly service: string; readonly method: string };

/** An event of another stream, correlated to this instance. */
export interface PmEventInput {
  readonly kind: 'event';
  /** The source event's `event_id`. */
  readonly inputId: string;
  readonly type: string;
  readonly data: unknown;
  readonly sourceStreamId: string;
  readonly sourceVersion: number;
}

/** A timeout this instance armed came due. */
export interface PmTimeoutInput {
  readonly kind: 'timeout';
  readonly inputId: string;
  readonly name: string;
}

/** What the instance's queue holds: the inputs that come from outside. */
export type PmRecordedInput = PmEventInput | PmTimeoutInput;

/** The instance decided to send this command (applied once the step completes). */
export type PmSent = {
  readonly kind: 'sent';
  readonly request: Readonly<Record<string, unknown>>;
} & PmTarget;

/** The instance armed a timeout. */
export interface PmScheduled {
  readonly kind: 'scheduled';
  readonly name: string;
  readonly dueAt: string;
}

/** A command it sent with `tolerateRejection` was refused by a business rule. */
export type PmRejected = {
  readonly kind: 'rejected';
  readonly reason: string;
} & PmTarget;

/** Everything `evolve` is told. */
export type PmInput = PmRecordedInput | PmSent | PmScheduled | PmRejected;

/** A command to send; the runtime adds its command id. */
export type PmCommand = PmTarget & {
  /** The request without `commandId` (e.g. `{ orderId, carrier, trackingNumber }`). */
  readonly request: Readonly<Record<string, unknown>>;
  /**
   * A refusal by a business rule (FAILED_PRECONDITION) is an expected outcome:
   * it is fed back as a `rejected` input instead of parking the instance.
   * @default false
   */
  readonly tolerateRejection?: boolean;
};

export interface PmDecision {
  /** Sent in this order, each after the previous one was applied. */
  readonly commands?: readonly PmCommand[];
  /**
   * Timeouts to arm: `name` fires `afterMs` after `from` (an ISO 8601 time,
   * e.g. when the source event happened; default the decision's `now`, the
   * shard's clock). An armed name is not armed again.
   */
  readonly schedule?: readonly { readonly name: string; readonly afterMs: number; readonly from?: string }[];
  /** Armed timeouts to disarm (names that are not armed are ignored). */
  readonly cancel?: readonly string[];
}

export interface PmDecideContext<Settings> {
  /** The shard's clock when the input was applied (ISO 8601). */
  readonly now: string;
  readonly settings: Settings;
  /** The armed timeouts: name → due time (ISO 8601). */
  readonly timeouts: Readonly<Record<string, string>>;
}

/** The fields of a source event `correlate` may read. */
export interface PmSourceEvent {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly type: string;
  readonly data: unknown;
}

export interface ProcessManagerDefinition<S = unknown, Settings = unknown> {
  /** `[a-z0-9-]+`; instances are streams `pm-<name>-<correlation id>`. */
  readonly name: string;
  /** The events it reads: the worker's consumer group filter (`eventTypes` empty = every type of those aggregates). */
  readonly sources: { readonly aggregateTypes: readonly string[]; readonly eventTypes: readonly string[] };
  /** Event types that may start an instance; other inputs wait on the instance until one arrives. */
  readonly startsWith: readonly string[];
  /** The instance an event belongs to, or `undefined` when it concerns none. */
  correlate(event: PmSourceEvent): string | undefined;
  /**
   * The source streams of an instance, read directly before one of its
   * timeouts is fired: what they hold is recorded first (inputs are ids of
   * (stream, version), so what the consumer group delivers later is a
   * duplicate), so a timeout never fires on an instance that lags behind an
   * event committed in time (e.g. the authorization that disarms it).
   */
  catchUpStreams(instanceId: string): readonly { readonly aggregateType: string; readonly aggregateId: string }[];
  /** The settings the worker sends with every input, from its environment (validated; throws listing problems). */
  readSettings(env: Readonly<Record<string, string | undefined>>): Settings;
  /** The variables `readSettings` reads (for deployment checks). */
  readonly settingsEnv: readonly string[];
  /** Bumped when the shape of `S` changes (the instance stream's snapshots are then skipped). */
  readonly stateSchemaVersion: number;
  initialState(): S;
  evolve(state: S, input: PmInput): S;
  decide(state: S, context: PmDecideContext<Settings>): PmDecision;
  /** Whether the instance has nothing left to do (for `pm list` and the metrics). */
  isComplete(state: S): boolean;
}

/** Widened type for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProcessManager = ProcessManagerDefinition<any, any>;

/** The aggregate type of a process manager's instances: `pm-<name>`. */
export function instanceAggregateType(name: string): string {
  return `pm-${name}`;
}

/** Identity, for type inference at the definition site. */
export function defineProcessManager<S, Settings>(definition: ProcessManagerDefinition<S, Settings>): ProcessManagerDefinition<S, Settings> {
  if (!/^[a-z0-9-]{1,40}$/.test(definition.name)) throw new Error(`process manager name ${definition.name} must match [a-z0-9-]{1,40}`);
  return definition;
}

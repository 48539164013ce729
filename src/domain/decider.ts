/**
 * The shape every aggregate type implements. A decider is pure: no I/O, no
 * clocks, no randomness. Time comes in on the command (`at`).
 */

/** A command or event: a discriminated union member `{ type, data }`. */
export interface Message<T extends string = string, D = unknown> {
  readonly type: T;
  readonly data: D;
}

/** Context the pipeline attaches to every command; deciders may read `at`. */
export interface CommandContext {
  /** The time the shard accepted the command (ISO 8601), the only clock a decider sees. */
  readonly at: string;
}

export type Command<T extends string = string, D = unknown> = Message<T, D> & { readonly context: CommandContext };

/**
 * An event as the domain sees it: always in the current schema (old versions
 * are upcast on read, see `Upcasters`).
 */
export type DomainEvent<T extends string = string, D = unknown> = Message<T, D>;

/** Upcasters by event type, then by the schema version they read: `{ OrderLineAdded: { 1: (v1) => v2 } }`. */
export type Upcasters = Readonly<Record<string, Readonly<Record<number, (data: unknown) => unknown>>>>;

export interface Decider<C extends Command = Command, E extends DomainEvent = DomainEvent, S = unknown> {
  /** The aggregate type, e.g. `order-lines`; streams are named `${type}-${aggregateId}`. */
  readonly aggregateType: string;
  /**
   * Bumped whenever the shape of `S` changes, so snapshots of an older shape
   * are skipped and the stream replayed (invariant I8).
   */
  readonly stateSchemaVersion: number;
  /** The current schema version of each event type this decider emits; default 1. */
  readonly eventSchemaVersions: Readonly<Record<string, number>>;
  /** Turns stored events of older schema versions into the current shape. */
  readonly upcasters: Upcasters;
  /**
   * Which fields of which event types are a data subject's personal data
   * (crypto-shredding, `src/privacy/`): they are stored encrypted with the
   * subject's own key and read as `"[erased]"` once the subject is erased.
   * `decide` and `evolve` must never need them: the state keeps none.
   */
  readonly personalData?: PersonalDataDeclarations;
  /**
   * The aggregate type whose stream of the same aggregate id owns this one
   * (`order-header` for an order's lines and payment): a new stream of this
   * type belongs to that stream's tenant when it exists, so a caller of
   * another tenant who knows the id cannot create it, and the parts of one
   * order never belong to two tenants. The two are routed by the same id, so
   * they live on the same shard. Default: a new stream belongs to the tenant
   * of the command that creates it.
   */
  readonly tenantFrom?: string;
  /** The state of a stream with no events. Must be JSON-serializable. */
  initialState(): S;
  /**
   * Returns the events the command causes (at least one), or throws
   * `BusinessRuleError` / `AggregateNotFoundError`.
   */
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
}

/**
 * One event type's personal data: the field (of the event's data) naming the
 * data subject, and the top-level fields that belong to that subject.
 */
export interface PersonalDataSpec {
  readonly subjectField: string;
  readonly fields: readonly string[];
}

/** Personal data by event type. */
export type PersonalDataDeclarations = Readonly<Record<string, PersonalDataSpec>>;

/** Widened type for registries that hold deciders of different aggregate types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDecider = Decider<any, any, any>;

/**
 * A process-manager instance as an aggregate: the decider of the streams
 * `pm-<name>-<correlation id>`, built from a definition. Everything that
 * happens to an instance is an event on its stream, so it is snapshotted,
 * moved and fenced like any other stream, and the shard's pipeline gives it
 * what it gives every aggregate: one command at a time per stream, optimistic
 * concurrency with retries, and command-id deduplication (I4).
 *
 * Life of an instance:
 *
 * - `RecordProcessInput` records an input (`InputRecorded`; an input id seen
 *   before is refused). If the instance is free — started (or the input
 *   starts it), no step in flight, not parked — queued inputs are applied in
 *   order (`InputApplied`, folded with the definition's `evolve`) and after
 *   each one the definition decides; the first non-empty decision becomes
 *   `StepDecided` (its commands with ids derived from instance, input and
 *   step; timeouts to arm or disarm with due times). Inputs behind a step
 *   with commands wait for it; a step that only arms or disarms timeouts
 *   waits for nothing (the worker arms them from the event, before it
 *   acknowledges it).
 * - `CompleteProcessStep` from the worker, once every command of the step was
 *   applied: `StepCompleted` (tolerated refusals fed back as `rejected`
 *   inputs), then the queue drains as above. With a failure: `Parked` —
 *   inputs keep being recorded, none is applied.
 * - `RetryProcess` (operator): `Resumed`, and the parked step is decided again
 *   as attempt n+1 with the same command ids, so commands that were applied
 *   are not applied again.
 *
 * Each step is in flight alone: an instance's inputs are applied in the
 * order they were recorded and its commands are sent in the order decided.
 */
import { createHash } from 'node:crypto';
import type { Command, Decider, DomainEvent } from '../domain/decider.js';
import { BusinessRuleError } from '../errors.js';
import { instanceAggregateType, type AnyProcessManager, type PmDecision, type PmInput, type PmRecordedInput, type PmTarget } from './definition.js';

/** A command of a step, as recorded: the runtime's id makes a redelivery harmless. */
export type StepCommand = PmTarget & {
  readonly request: Readonly<Record<string, unknown>>;
  readonly commandId: string;
  readonly tolerateRejection: boolean;
};

/** An armed timeout; `id` is unique within the instance (`<name>:<step>`). */
export interface ArmedTimeout {
  readonly name: string;
  readonly id: string;
  readonly dueAt: string;
}

/** What `pm list` and the metrics show. */
export type InstanceStatus = 'not-started' | 'running' | 'waiting' | 'parked' | 'completed' | 'idle';

export interface InFlightStep {
  readonly step: number;
  readonly attempt: number;
  readonly inputId: string;
  readonly commands: readonly StepCommand[];
}

export interface InstanceState {
  readonly started: boolean;
  /** The definition's state. */
  readonly pm: unknown;
  /** Every input id recorded, so a redelivered input is refused even without its command id. */
  readonly seen: readonly string[];
  /** Recorded, not yet applied, in recording order. */
  readonly queue: readonly PmRecordedInput[];
  /** The last step number decided (0 = none). */
  readonly step: number;
  readonly inFlight: InFlightStep | undefined;
  readonly parked: { readonly step: number; readonly reason: string } | undefined;
  readonly timeouts: Readonly<Record<string, ArmedTimeout>>;
  /** The settings sent with the last input. */
  readonly settings: unknown;
}

/** Every instance command names its stream (`pm-<name>-<id>`): the command ids it derives depend on it. */
interface OnInstance {
  readonly streamId: string;
}
export type RecordProcessInput = Command<'RecordProcessInput', { readonly input: PmRecordedInput; readonly settings: unknown } & OnInstance>;
export type CompleteProcessStep = Command<'CompleteProcessStep', { readonly step: number; readonly attempt: number; readonly failure: string; readonly rejected: readonly number[] } & OnInstance>;
export type RetryProcess = Command<'RetryProcess', OnInstance>;
export type InstanceCommand = RecordProcessInput | CompleteProcessStep | RetryProcess;

/** Every event carries the status after it, for the worker's instance table. */
interface WithStatus {
  readonly status: InstanceStatus;
}
export type InputRecorded = DomainEvent<'InputRecorded', { readonly input: PmRecordedInput; readonly settings: unknown } & WithStatus>;
/** `ignored`: a timeout that was disarmed or re-armed since; it changes nothing. */
export type InputApplied = DomainEvent<'InputApplied', { readonly inputId: string; readonly ignored: boolean } & WithStatus>;
export type StepDecided = DomainEvent<
  'StepDecided',
  {
    readonly step: number;
    readonly attempt: number;
    readonly inputId: string;
    readonly commands: readonly StepCommand[];
    readonly schedule: readonly ArmedTimeout[];
    readonly cancel: readonly ArmedTimeout[];
  } & WithStatus
>;
export type StepCompleted = DomainEvent<'StepCompleted', { readonly step: number; readonly rejected: readonly (PmTarget & { readonly reason: string })[] } & WithStatus>;
export type Parked = DomainEvent<'Parked', { readonly step: number; readonly reason: string } & WithStatus>;
export type Resumed = DomainEvent<'Resumed', { readonly step: number } & WithStatus>;
export type InstanceEvent = InputRecorded | InputApplied | StepDecided | StepCompleted | Parked | Resumed;

/** The message a refused duplicate input carries (the worker treats it as "already recorded"). */
export const INPUT_ALREADY_RECORDED = 'the input is already recorded on this instance';
/** The message a completion of a step that is not in flight carries. */
export const STEP_NOT_IN_FLIGHT = 'that step is not in flight on this instance';

/**
 * The command id of the `index`-th command of `step`, decided on `inputId`
 * by instance `streamId`: stable, so the same decision sends the same ids.
 */
export function stepCommandId(streamId: string, inputId: string, step: number, index: number): string {
  const digest = createHash('sha256').update(`${streamId}\n${inputId}\n${step}\n${index}`).digest('base64url');
  return `pm-${digest.slice(0, 40)}`;
}

/** The status an instance state shows. */
export function instanceStatus(definition: AnyProcessManager, state: InstanceState): InstanceStatus {
  if (state.parked) return 'parked';
  if (state.inFlight) return 'running';
  if (!state.started) return 'not-started';
  if (Object.keys(state.timeouts).length > 0) return 'waiting';
  let complete = false;
  try {
    complete = definition.isComplete(state.pm);
  } catch {
    // A status is for display: a definition that cannot tell shows the instance as idle.
  }
  return complete ? 'completed' : 'idle';
}

/**
 * The definition's own code threw (its `evolve` or `decide`). The command is
 * not failed for it: the instance is parked on the input (or the step) that
 * made it throw, so the worker acknowledges and goes on with other instances
 * instead of retrying one that can never succeed; `pm retry` tries it again
 * (after the definition was fixed).
 */
class DefinitionFailure extends Error {}

/** The target of a command alone (events recorded before `service` existed have none). */
const targetOf = (c: PmTarget): PmTarget => (c.service === undefined ? { method: c.method } : { service: c.service, method: c.method });

/** Builds the decider of `definition`'s instances (aggregate type `pm-<name>`). */
export function instanceDecider(definition: AnyProcessManager): Decider<InstanceCommand, InstanceEvent, InstanceState> {
  const aggregateType = instanceAggregateType(definition.name);

  const guarded = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new DefinitionFailure(`${definition.name} ${what} threw: ${err instanceof Error ? err.message : String(err)}`.slice(0, 1000));
    }
  };
  const evolvePm = (pm: unknown, input: PmInput): unknown => guarded('evolve', (): unknown => definition.evolve(pm, input));

  const evolve = (state: InstanceState, event: InstanceEvent): InstanceState => {
    switch (event.type) {
      case 'InputRecorded':
        return {
          ...state,
          seen: [...state.seen, event.data.input.inputId],
          queue: [...state.queue, event.data.input],
          settings: event.data.settings,
        };
      case 'InputApplied': {
        const input = state.queue.find((i) => i.inputId === event.data.inputId);
        if (!input) return state;
        const queue = state.queue.filter((i) => i !== input);
        if (event.data.ignored) return { ...state, queue };
        const timeouts = { ...state.timeouts };
        if (input.kind === 'timeout') delete timeouts[input.name];
        return { ...state, queue, timeouts, started: true, pm: evolvePm(state.pm, input) };
      }
      case 'StepDecided': {
        const { step, attempt, inputId, commands } = event.data;
        // A step with no commands (only timeouts) has nothing to wait for: the worker arms them from the event.
        const inFlight = commands.length > 0 ? { step, attempt, inputId, commands } : undefined;
        // A retry re-sends what was decided: the definition saw it the first time.
        if (attempt > 1) return { ...state, inFlight };
        let pm = state.pm;
        for (const c of commands) pm = evolvePm(pm, { kind: 'sent', request: c.request, ...targetOf(c) });
        const timeouts = { ...state.timeouts };
        for (const t of event.data.cancel) delete timeouts[t.name];
        for (const t of event.data.schedule) {
          timeouts[t.name] = t;
          pm = evolvePm(pm, { kind: 'scheduled', name: t.name, dueAt: t.dueAt });
        }
        return { ...state, pm, timeouts, step, inFlight };
      }
      case 'StepCompleted': {
        let pm = state.pm;
        for (const r of event.data.rejected) pm = evolvePm(pm, { kind: 'rejected', reason: r.reason, ...targetOf(r) });
        return { ...state, pm, inFlight: undefined };
      }
      case 'Parked':
        return { ...state, parked: { step: event.data.step, reason: event.data.reason } };
      case 'Resumed':
        return { ...state, parked: undefined };
      default:
        return state;
    }
  };

  /** Appends events to `out` while folding them into the state, stamping each with the status it leads to. */
  const emitter = (initial: InstanceState) => {
    let state = initial;
    const out: InstanceEvent[] = [];
    return {
      get state() {
        return state;
      },
      out,
      /** Where to come back to when what follows throws. */
      mark: () => ({ state, length: out.length }),
      rollback(to: { state: InstanceState; length: number }) {
        state = to.state;
        out.length = to.length;
      },
      emit(event: { type: InstanceEvent['type']; data: Record<string, unknown> }) {
        const withStatus = { type: event.type, data: { ...event.data, status: 'idle' } } as InstanceEvent;
        state = evolve(state, withStatus);
        (withStatus.data as { status: InstanceStatus }).status = instanceStatus(definition, state);
        out.push(withStatus);
      },
    };
  };
  type Emitter = ReturnType<typeof emitter>;

  /**
   * Turns a decision into a step: `in-flight` when it has commands to wait
   * for, `settled` when it only arms or disarms timeouts, `none` when it
   * changes nothing.
   */
  const decideStep = (e: Emitter, streamId: string, inputId: string, now: string): 'none' | 'settled' | 'in-flight' => {
    const s = e.state;
    const armed: Record<string, string> = {};
    for (const [name, t] of Object.entries(s.timeouts)) armed[name] = t.dueAt;
    const decision: PmDecision = guarded('decide', () => definition.decide(s.pm, { now, settings: s.settings, timeouts: armed }));
    const step = s.step + 1;
    const commands = (decision.commands ?? []).map((c, i): StepCommand => ({
      ...targetOf(c),
      request: c.request,
      commandId: stepCommandId(streamId, inputId, step, i),
      tolerateRejection: c.tolerateRejection ?? false,
    }));
    const schedule = (decision.schedule ?? [])
      .filter((t) => s.timeouts[t.name] === undefined)
      .map((t): ArmedTimeout => {
        const from = t.from !== undefined && Number.isFinite(Date.parse(t.from)) ? Date.parse(t.from) : Date.parse(now);
        return { name: t.name, id: `${t.name}:${step}`, dueAt: new Date(from + t.afterMs).toISOString() };
      });
    const cancel = (decision.cancel ?? []).flatMap((name) => (s.timeouts[name] ? [s.timeouts[name]] : []));
    if (commands.length === 0 && schedule.length === 0 && cancel.length === 0) return 'none';
    e.emit({ type: 'StepDecided', data: { step, attempt: 1, inputId, commands, schedule, cancel } });
    return commands.length > 0 ? 'in-flight' : 'settled';
  };

  /**
   * Runs `f`; when the definition throws in it, undoes what `f` emitted and
   * parks the instance at `step` instead. Returns whether it parked.
   */
  const orPark = (e: Emitter, step: number, what: string, f: () => void): boolean => {
    const mark = e.mark();
    try {
      f();
      return false;
    } catch (err) {
      if (!(err instanceof DefinitionFailure)) throw err;
      e.rollback(mark);
      e.emit({ type: 'Parked', data: { step, reason: `${err.message} (${what})`.slice(0, 2000) } });
      return true;
    }
  };

  /** Applies queued inputs while the instance is free, stopping at the first step decided (or parking where the definition throws). */
  const drain = (e: Emitter, streamId: string, now: string): void => {
    for (;;) {
      const s = e.state;
      if (s.inFlight || s.parked || s.queue.length === 0) return;
      // Before the start, inputs wait; the first start event goes first, the rest then follow in order.
      const next = s.started ? s.queue[0] : s.queue.find((i) => i.kind === 'event' && definition.startsWith.includes(i.type));
      if (!next) return;
      const stale = next.kind === 'timeout' && s.timeouts[next.name]?.id !== next.inputId.slice('timeout:'.length);
      let inFlight = false;
      const parked = orPark(e, s.step, `on input ${next.inputId}`, () => {
        e.emit({ type: 'InputApplied', data: { inputId: next.inputId, ignored: stale } });
        inFlight = !stale && decideStep(e, streamId, next.inputId, now) === 'in-flight';
      });
      if (parked || inFlight) return;
    }
  };

  return {
    aggregateType,
    stateSchemaVersion: definition.stateSchemaVersion,
    eventSchemaVersions: {},
    upcasters: {},

    initialState: () => ({
      started: false,
      pm: definition.initialState(),
      seen: [],
      queue: [],
      step: 0,
      inFlight: undefined,
      parked: undefined,
      timeouts: {},
      settings: undefined,
    }),

    decide(command, state) {
      const now = command.context.at;
      const e = emitter(state);
      const streamId = command.data.streamId;
      switch (command.type) {
        case 'RecordProcessInput': {
          const { input, settings } = command.data;
          if (state.seen.includes(input.inputId)) throw new BusinessRuleError(INPUT_ALREADY_RECORDED);
          e.emit({ type: 'InputRecorded', data: { input, settings } });
          drain(e, streamId, now);
          return e.out;
        }
        case 'CompleteProcessStep': {
          const { step, attempt, failure, rejected } = command.data;
          const f = state.inFlight;
          if (!f || state.parked || f.step !== step || f.attempt !== attempt) throw new BusinessRuleError(STEP_NOT_IN_FLIGHT);
          if (failure !== '') {
            e.emit({ type: 'Parked', data: { step, reason: failure } });
            return e.out;
          }
          const refused = rejected.flatMap((i) => {
            const c = f.commands[i];
            return c ? [{ ...targetOf(c), reason: 'refused by a business rule' }] : [];
          });
          let next = 'none' as 'none' | 'settled' | 'in-flight';
          // The step stays in flight when the definition throws on its outcome: a retry sends it again (same ids).
          const parked = orPark(e, step, `on the outcome of step ${step}`, () => {
            e.emit({ type: 'StepCompleted', data: { step, rejected: refused } });
            // A refusal is news to the definition: let it decide on it before the next input.
            if (refused.length > 0) next = decideStep(e, streamId, `${f.inputId}:rejected:${step}`, now);
          });
          if (parked || next === 'in-flight') return e.out;
          drain(e, streamId, now);
          return e.out;
        }
        case 'RetryProcess': {
          const f = state.inFlight;
          if (!state.parked) throw new BusinessRuleError('the instance is not parked');
          e.emit({ type: 'Resumed', data: { step: f?.step ?? state.step } });
          if (f) e.emit({ type: 'StepDecided', data: { step: f.step, attempt: f.attempt + 1, inputId: f.inputId, commands: f.commands, schedule: [], cancel: [] } });
          // Parked where the definition threw: the input it threw on is applied again.
          else drain(e, streamId, now);
          return e.out;
        }
        default:
          throw new Error(`${aggregateType} cannot decide ${(command as { type: string }).type}`);
      }
    },

    evolve,
  };
}

/**
 * Given events → when command → then events or error, for any decider.
 * Every `given` state is checked to survive a JSON round trip unchanged,
 * since snapshots store it as JSON (invariant I8).
 */
import { expect } from 'vitest';
import type { Command, Decider, DomainEvent } from '../../src/domain/decider.js';

/** The instant every test command is accepted at, unless a test says otherwise. */
export const AT = '2024-05-01T12:00:00.000Z';

/** Builds a command the way the pipeline does: the routed `{ type, data }` plus its context. */
export function command<C extends Command>(type: C['type'], data: C['data'], at = AT): C {
  return { type, data, context: { at } } as C;
}

/** Folds events from the initial state, asserting each state is plain JSON. */
export function stateAfter<C extends Command, E extends DomainEvent, S>(decider: Decider<C, E, S>, events: readonly E[]): S {
  let state = decider.initialState();
  for (const event of events) state = decider.evolve(state, event);
  expect(JSON.parse(JSON.stringify(state))).toStrictEqual(state);
  return state;
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface Then<E> {
  /** Asserts the command produced exactly these events. */
  then(expected: readonly E[]): void;
  /** Asserts the command threw an instance of `errorClass`, its message matching `message` when given. */
  thenThrows(errorClass: ErrorClass, message?: string | RegExp): void;
}

/** Starts a scenario for `decider`: `spec(d).given([...]).when(cmd).then([...])`. */
export function spec<C extends Command, E extends DomainEvent, S>(decider: Decider<C, E, S>) {
  return {
    given(events: readonly E[]) {
      const state = stateAfter(decider, events);
      return {
        when(cmd: C): Then<E> {
          const run = (): E[] => decider.decide(cmd, state);
          return {
            then(expected) {
              const produced = run();
              expect(produced.length).toBeGreaterThan(0);
              expect(produced).toStrictEqual(expected);
              // The produced events must fold cleanly on top of the history.
              stateAfter(decider, [...events, ...produced]);
            },
            thenThrows(errorClass, message) {
              let caught: unknown;
              try {
                run();
              } catch (err) {
                caught = err;
              }
              expect(caught).toBeInstanceOf(errorClass);
              if (message !== undefined) expect((caught as Error).message).toMatch(message);
            },
          };
        },
      };
    },
  };
}

/**
 * Asserts that a call throws, or a promise rejects, with an Error, and
 * returns it: what `toThrow(expected)` and `rejects.toThrow(expected)` mean,
 * without their hole — both pass on a throw of (or rejection with)
 * `undefined` whatever `expected` says (vitest#7260), so ESLint refuses them
 * in the tests. `expected` as `toThrow` takes it: a pattern or a substring of
 * the message, an Error whose message it must have, or the error's class;
 * `message` (as `expect`'s second argument) says which case failed.
 */
import { expect } from 'vitest';

type Expected = RegExp | string | Error | (abstract new (...args: never[]) => Error);

export async function expectRejection(promise: unknown, expected?: Expected, message?: string): Promise<Error> {
  const outcome = await Promise.resolve(promise).then(
    (value: unknown) => ({ resolved: true as const, value }),
    (reason: unknown) => ({ resolved: false as const, reason }),
  );
  if (outcome.resolved) expect.fail(`${prefix(message)}expected a rejection, but it resolved with ${String(outcome.value)}`);
  return expectError(outcome.reason, `${prefix(message)}the rejection`, expected);
}

export function expectThrow(call: () => unknown, expected?: Expected, message?: string): Error {
  let value: unknown;
  try {
    value = call();
  } catch (err) {
    return expectError(err, `${prefix(message)}the throw`, expected);
  }
  return expect.fail(`${prefix(message)}expected a throw, but it returned ${String(value)}`);
}

const prefix = (message: string | undefined) => (message === undefined ? '' : `${message}: `);

function expectError(err: unknown, what: string, expected: Expected | undefined): Error {
  expect(err, `${what} is an Error`).toBeInstanceOf(Error);
  const { message } = err as Error;
  if (expected instanceof RegExp) expect(message, `${what}'s message`).toMatch(expected);
  else if (typeof expected === 'string') expect(message, `${what}'s message`).toContain(expected);
  else if (expected instanceof Error) expect(message, `${what}'s message`).toBe(expected.message);
  else if (expected) expect(err, `${what}'s class`).toBeInstanceOf(expected);
  return err as Error;
}

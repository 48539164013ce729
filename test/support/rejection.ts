/**
 * Asserts that `promise` rejects with an Error and returns it: what
 * `rejects.toThrow(expected)` means, without its hole — that passes on a
 * rejection with `undefined` whatever `expected` says (vitest#7260), so
 * ESLint refuses it in the tests. `expected` as `toThrow` takes it: a pattern
 * or a substring of the message, or the error's class.
 */
import { expect } from 'vitest';

export async function expectRejection(promise: unknown, expected?: RegExp | string | (abstract new (...args: never[]) => Error)): Promise<Error> {
  const outcome = await Promise.resolve(promise).then(
    (value: unknown) => ({ resolved: true as const, value }),
    (reason: unknown) => ({ resolved: false as const, reason }),
  );
  if (outcome.resolved) expect.fail(`expected a rejection, but it resolved with ${String(outcome.value)}`);
  const err = outcome.reason;
  expect(err, 'the rejection is an Error').toBeInstanceOf(Error);
  if (expected instanceof RegExp) expect((err as Error).message).toMatch(expected);
  else if (typeof expected === 'string') expect((err as Error).message).toContain(expected);
  else if (expected) expect(err).toBeInstanceOf(expected);
  return err as Error;
}

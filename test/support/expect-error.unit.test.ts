import { describe, expect, it } from 'vitest';
import { expectRejection, expectThrow } from './expect-error.js';

class Refused extends Error {}

/** Runs an assertion and says whether it failed. */
async function fails(assertion: () => unknown): Promise<boolean> {
  try {
    await assertion();
    return false;
  } catch {
    return true;
  }
}

describe('expectThrow and expectRejection', () => {
  it('fail on a throw of undefined whatever they expect, where toThrow passes (vitest#7260)', async () => {
    const throwsUndefined = (): never => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the case under test
      throw undefined;
    };
    // The hole these helpers close, still there in vitest: if it is fixed, toThrow is fine again.
    // eslint-disable-next-line no-restricted-syntax -- the assertion whose hole this shows
    expect(throwsUndefined).toThrow(/anything/);
    for (const expected of [/anything/, 'anything', Refused, new Error('anything'), undefined]) {
      expect(await fails(() => expectThrow(throwsUndefined, expected)), String(expected)).toBe(true);
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the case under test
      expect(await fails(() => expectRejection(Promise.reject(undefined), expected)), String(expected)).toBe(true);
    }
  });

  it('fail on a throw of something that is not an Error, even with the expected message', async () => {
    const lookalike = { message: 'anything' };
    for (const expected of [/anything/, 'anything', new Error('anything'), undefined]) {
      expect(
        await fails(() =>
          expectThrow(() => {
            // eslint-disable-next-line @typescript-eslint/only-throw-error -- the case under test
            throw lookalike;
          }, expected),
        ),
        String(expected),
      ).toBe(true);
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the case under test
      expect(await fails(() => expectRejection(Promise.reject(lookalike), expected)), String(expected)).toBe(true);
    }
  });

  it('pass on the expected error and return it, and fail on another one or on none', async () => {
    const refuse = (): never => {
      throw new Refused('no such order o-1');
    };
    expect(expectThrow(refuse, /order o-\d/)).toBeInstanceOf(Refused);
    expect(await expectRejection(Promise.reject(new Refused('no such order o-1')), 'such order')).toBeInstanceOf(Refused);
    expectThrow(refuse, Refused);
    expectThrow(refuse, new Error('no such order o-1'));
    for (const expected of [/order o-2/, 'stream', TypeError, new Error('no such order')]) {
      expect(await fails(() => expectThrow(refuse, expected)), String(expected)).toBe(true);
      expect(await fails(() => expectRejection(Promise.reject(new Refused('no such order o-1')), expected)), String(expected)).toBe(true);
    }
    expect(await fails(() => expectThrow(() => 1))).toBe(true);
    expect(await fails(() => expectRejection(Promise.resolve(1)))).toBe(true);
  });

  it('name the failing case with their message', async () => {
    const failure = (call: () => unknown) =>
      Promise.resolve()
        .then(call)
        .then(
          () => undefined,
          (err: unknown) => String(err),
        );
    expect(await failure(() => expectThrow(() => 'returned', undefined, 'case 7'))).toContain('case 7: expected a throw, but it returned returned');
    expect(await failure(() => expectRejection(Promise.reject(new Error('x')), /y/, 'case 8'))).toContain("case 8: the rejection's message");
  });
});

/**
 * Conversions for the BIGINT columns node-postgres returns as strings: a
 * version or epoch becomes a checked `number`, a position a `bigint`. Nothing
 * loses precision silently.
 */

/**
 * A BIGINT (string or number) as a `number`.
 * @throws RangeError when the value is not an integer within ±(2^53 − 1).
 */
export function toSafeInteger(value: unknown, what: string): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : Number.NaN;
  if (!Number.isSafeInteger(n) || (typeof value === 'string' && !/^-?\d+$/.test(value))) {
    throw new RangeError(`${what} ${String(value)} is not a safe integer`);
  }
  return n;
}

/**
 * A BIGINT (string, number or bigint) as a `bigint`.
 * @throws RangeError when the value is not an integer.
 */
export function toBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if ((typeof value === 'string' && /^-?\d+$/.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value))) {
    return BigInt(value);
  }
  throw new RangeError(`${what} ${String(value)} is not an integer`);
}

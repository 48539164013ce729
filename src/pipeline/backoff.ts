/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): a uniform delay in [0, min(cap, base * 2^attempt)).
 * Full jitter spreads competing retries the most, which is what stops a
 * conflict storm from re-colliding.
 */
export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** A sleep whose timer never outlives the wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves or rejects with `promise`, or rejects with `onTimeout()` after `ms`;
 * the timer is always cleared. (The losing promise cannot be cancelled, so
 * callers bound the work itself too, e.g. with a statement timeout.)
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

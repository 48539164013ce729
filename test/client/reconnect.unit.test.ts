import { describe, expect, it } from 'vitest';
import { RECONNECT_CAP_MS, reconnectDelay } from '../../src/client/reconnect.js';

describe('reconnect backoff', () => {
  it('doubles the ceiling per attempt from the base and never exceeds the cap', () => {
    const top = () => 0.999_999;
    expect(reconnectDelay(0, { baseMs: 100, capMs: 5000 }, top)).toBe(99);
    expect(reconnectDelay(3, { baseMs: 100, capMs: 5000 }, top)).toBe(799);
    expect(reconnectDelay(10, { baseMs: 100, capMs: 5000 }, top)).toBe(4999);
    expect(reconnectDelay(60, {}, top)).toBeLessThan(RECONNECT_CAP_MS);
  });

  it('spreads the delays over the whole range (full jitter), and waits at least 1 ms', () => {
    expect(reconnectDelay(5, { baseMs: 100, capMs: 5000 }, () => 0)).toBe(1);
    const delays = Array.from({ length: 2000 }, () => reconnectDelay(4, { baseMs: 100, capMs: 5000 }));
    expect(Math.min(...delays)).toBeLessThan(200);
    expect(Math.max(...delays)).toBeGreaterThan(1400);
    expect(Math.max(...delays)).toBeLessThan(1600);
  });
});

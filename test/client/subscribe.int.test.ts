/**
 * The client's subscription against a scripted SubscriptionService on
 * loopback: it resumes from the last checkpoint it received after a broken
 * call, so the caller sees every event once, in order; it stops on a refusal.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { subscribe, SubscriptionRefusedError, type ReceivedEvent, type SubscriptionProgress } from '../../src/client/index.js';
import { startScriptedServer, type ScriptedServer } from './scripted-servers.js';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function take(iterable: AsyncIterable<ReceivedEvent>, n: number): Promise<ReceivedEvent[]> {
  const out: ReceivedEvent[] = [];
  if (n === 0) return out;
  for await (const e of iterable) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe('subscribe', () => {
  it('delivers every event once and in order although the server breaks the call every 7 events', async () => {
    server = await startScriptedServer({ events: 100, breakAfter: () => 7, checkpointEvery: 5 });
    const progress: SubscriptionProgress[] = [];
    const sub = subscribe(server.address, { onProgress: (p) => progress.push(p), reconnect: { baseMs: 1, capMs: 5 } });
    const events = await take(sub, 100);
    expect(events.map((e) => e.eventId)).toEqual(Array.from({ length: 100 }, (_, i) => `e${i}`));
    // Each new call started right after the last event the previous one delivered.
    expect(server.subscribeFroms.slice(0, 4)).toEqual(['', '7', '14', '21']);
    expect(sub.reconnects).toBeGreaterThanOrEqual(14);
    expect(progress.filter((p) => p.kind === 'reconnecting').length).toBe(sub.reconnects);
    expect(sub.checkpoint).toBe('100');
    expect(events[3]!.data).toEqual({ i: 3 });
    expect(events[3]!.version).toBe(2);
  });

  it('reports caught-up in order with the events and keeps the caller checkpoint at what it took', async () => {
    server = await startScriptedServer({ events: 10 });
    const seen: string[] = [];
    const sub = subscribe(server.address, {
      from: '4',
      onProgress: (p) => seen.push(p.kind),
      bufferSize: 2,
    });
    const it = sub[Symbol.asyncIterator]();
    const events: string[] = [];
    for (let i = 0; i < 6; i++) events.push(((await it.next()).value as ReceivedEvent).eventId);
    expect(events).toEqual(['e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
    expect(sub.checkpoint).toBe('10');
    expect(sub.caughtUp).toBe(false); // the caught-up notice comes after the last event, not yet taken
    expect(seen).toEqual([]);
    const next = it.next();
    await expect.poll(() => seen).toContain('caught-up');
    expect(sub.caughtUp).toBe(true);
    sub.close();
    await expect(next).resolves.toEqual({ done: true, value: undefined });
  });

  it('ends with SubscriptionRefusedError when the server refuses the request', async () => {
    server = await startScriptedServer({ events: 3, refuse: grpc.status.INVALID_ARGUMENT });
    const sub = subscribe(server.address, { from: 'not-a-token' });
    const err = await take(sub, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubscriptionRefusedError);
    expect((err as SubscriptionRefusedError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(server.subscribeFroms).toEqual(['not-a-token']);
  });

  it('stops when its signal aborts', async () => {
    server = await startScriptedServer({ events: 2 });
    const controller = new AbortController();
    const sub = subscribe(server.address, { signal: controller.signal });
    const got: string[] = [];
    const done = (async () => {
      for await (const e of sub) {
        got.push(e.eventId);
        if (got.length === 2) controller.abort();
      }
    })();
    await done;
    expect(got).toEqual(['e0', 'e1']);
  });
});

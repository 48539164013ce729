import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionLimits, type Ticket } from '../../router/admission.js';
import { LinkQueue, type QueuedFrame } from '../../router/link-queue.js';
import { ReceiveSlots } from '../../router/receive-slots.js';
import { OverloadedError } from '../../src/errors.js';
import { toRpcStatus } from '../../src/grpc/status.js';

const LIMITS: AdmissionLimits = {
  maxCalls: 100,
  maxBytes: 10_000,
  shardMaxCalls: 40,
  shardMaxBytes: 4000,
  connectionSharePercent: 25,
  retryAfterMs: 50,
};

const admitted = (t: Ticket | OverloadedError): Ticket => {
  if (t instanceof OverloadedError) throw t;
  return t;
};

describe('the router’s in-flight budgets', () => {
  it('refuses a connection beyond its share of the router, with OVERLOADED and a retry hint, while others still get in', () => {
    const a = new Admission(LIMITS);
    // 25 % of 100 calls; spread over shards so no shard budget is hit first.
    for (let i = 0; i < 25; i++) admitted(a.admit('flood:1', `shard-${i % 5}`, 1));
    const refused = a.admit('flood:1', 'shard-0', 1);
    expect(refused).toBeInstanceOf(OverloadedError);
    const status = toRpcStatus(refused);
    expect(status).toMatchObject({ code: 8, reason: 'OVERLOADED', retryAfterMs: 50 });
    expect(a.admit('legit:2', 'shard-0', 1)).not.toBeInstanceOf(OverloadedError);
  });

  it('refuses a connection beyond its share of one shard’s bytes, but lets it use the other shards', () => {
    const a = new Admission(LIMITS);
    admitted(a.admit('flood:1', 'shard-0', 1000)); // 25 % of 4000 bytes
    expect(a.admit('flood:1', 'shard-0', 1)).toBeInstanceOf(OverloadedError);
    expect(a.admit('flood:1', 'shard-1', 1000)).not.toBeInstanceOf(OverloadedError);
    expect(a.admit('legit:2', 'shard-0', 1000)).not.toBeInstanceOf(OverloadedError);
  });

  it('keeps a shard’s budget from being taken by many connections, and the router’s from being taken by one shard', () => {
    const a = new Admission({ ...LIMITS, connectionSharePercent: 100 });
    for (let i = 0; i < 40; i++) admitted(a.admit(`c:${i}`, 'shard-0', 1));
    expect(a.admit('c:new', 'shard-0', 1)).toBeInstanceOf(OverloadedError);
    expect(a.admit('c:new', 'shard-1', 1)).not.toBeInstanceOf(OverloadedError);
  });

  it('admits one call larger than a byte budget only when nothing else holds it', () => {
    const a = new Admission(LIMITS);
    const big = admitted(a.admit('c:1', 'shard-0', 50_000));
    expect(a.admit('c:1', 'shard-0', 1)).toBeInstanceOf(OverloadedError);
    big.release();
    expect(a.admit('c:1', 'shard-0', 1)).not.toBeInstanceOf(OverloadedError);
  });

  it('gives everything back on release (once), and forgets connections that hold nothing', () => {
    const a = new Admission(LIMITS);
    const tickets = Array.from({ length: 10 }, (_, i) => admitted(a.admit(`c:${i}`, `shard-${i % 3}`, 100)));
    expect(a.snapshot()).toEqual({ calls: 10, bytes: 1000, callers: 10 });
    for (const t of tickets) {
      t.release();
      t.release();
    }
    expect(a.snapshot()).toEqual({ calls: 0, bytes: 0, callers: 0 });
    // Refusals leave nothing behind either.
    expect(a.admit('c:x', 'shard-0', 1_000_000)).not.toBeInstanceOf(OverloadedError);
  });
});

describe('a link’s fair queue', () => {
  let id = 0;
  const frame = (size: number): QueuedFrame => ({ id: ++id, body: new Uint8Array(0), timeoutMs: 0, headers: new Uint8Array(0), size });

  it('lets a connection’s small frame pass another’s backlog of large ones', () => {
    const q = new LinkQueue();
    for (let i = 0; i < 20; i++) q.push('flood', frame(256 * 1024));
    const small = frame(200);
    q.push('legit', small);
    const first = q.take(256 * 1024);
    const second = q.take(256 * 1024);
    expect([...first, ...second]).toContain(small);
    expect(q.length).toBe(19);
  });

  it('keeps each connection’s frames in order and loses none', () => {
    const q = new LinkQueue();
    const pushed = new Map<string, number[]>();
    for (let i = 0; i < 300; i++) {
      const peer = `p${i % 7}`;
      const f = frame(1 + ((i * 7919) % 40_000));
      q.push(peer, f);
      pushed.set(peer, [...(pushed.get(peer) ?? []), f.id]);
    }
    const byPeer = new Map<number, string>();
    for (const [peer, ids] of pushed) for (const i of ids) byPeer.set(i, peer);
    const taken: number[] = [];
    while (q.length > 0) {
      const batch = q.take(64 * 1024);
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length === 1 || batch.reduce((s, f) => s + f.size, 0) <= 64 * 1024).toBe(true);
      taken.push(...batch.map((f) => f.id));
    }
    expect(q.bytes).toBe(0);
    for (const [peer, ids] of pushed) expect(taken.filter((i) => byPeer.get(i) === peer)).toEqual(ids);
  });
});

describe('the slots for reading unary requests', () => {
  it('reads at most its slots at once, a connection at most its share, and serves waiting connections in turn', () => {
    const slots = new ReceiveSlots(8, 25); // a connection: 2 at once
    const started: string[] = [];
    for (let i = 0; i < 6; i++) slots.acquire('flood', () => started.push(`flood-${i}`));
    expect(started).toEqual(['flood-0', 'flood-1']);
    slots.acquire('legit', () => started.push('legit-0'));
    expect(started).toContain('legit-0');
    // Fill the rest: legit may take its second slot; its third waits, like flood's.
    for (let i = 0; i < 4; i++) slots.acquire(`c${i}`, () => started.push(`c${i}`));
    slots.acquire('legit', () => started.push('legit-1'));
    slots.acquire('legit', () => started.push('legit-2'));
    expect(started).toContain('legit-1');
    expect(slots.figures).toEqual({ reading: 8, waiting: 5 });
    started.length = 0;
    slots.release('flood');
    slots.release('legit');
    expect(started).toEqual(['flood-2', 'legit-2']);
    // A free slot no waiting connection may take (each holds its share) stays free.
    slots.release('c0');
    expect(started).toEqual(['flood-2', 'legit-2']);
    expect(slots.figures).toEqual({ reading: 7, waiting: 3 });
  });

  it('skips a call that gave up while waiting, and gives its slot to the next', () => {
    const slots = new ReceiveSlots(1, 100);
    const started: string[] = [];
    slots.acquire('a', () => started.push('a'));
    const gone = slots.acquire('b', () => started.push('b'));
    slots.acquire('c', () => started.push('c'));
    gone.cancel();
    slots.release('a');
    expect(started).toEqual(['a', 'c']);
    expect(slots.figures).toEqual({ reading: 1, waiting: 0 });
  });
});

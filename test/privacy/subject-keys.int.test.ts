/**
 * Subject keys in a real ring database, seen by two "shards" (two
 * SubjectKeys over their own connections): one key per subject whoever
 * creates it, erasure reaching the other shard's cache through NOTIFY, and
 * tombstones that no late writer turns back into a key.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { orderHeader } from '../../src/domain/orders/header.js';
import { PgRingStore } from '../../src/ring/index.js';
import { ERASED, UNREADABLE, openValue } from '../../src/privacy/cipher.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { LocalKeyProvider } from '../../src/privacy/key-provider.js';
import { PgSubjectKeyStore } from '../../src/privacy/key-store.js';
import { PersonalData, SUBJECT_METADATA_KEY, withoutPersonalData } from '../../src/privacy/personal-data.js';
import { SubjectKeys } from '../../src/privacy/subject-keys.js';
import type { NewEvent, StoredEvent } from '../../src/store/types.js';
import type { FeedRow, PgFeedReader } from '../../src/store/pg-feed-reader.js';
import { LiveTail } from '../../src/subscriptions/live-tail.js';
import { followShard } from '../../src/subscriptions/shard-feed.js';
import { streamIdParser } from '../../src/subscriptions/filter.js';
import { START } from '../../src/subscriptions/position.js';
import { loadApi } from '../../src/grpc/proto.js';
import { eventResponse } from '../../src/subscriptions/event-codec.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

// Counts the AES-GCM openings, and still does them.
vi.mock('../../src/privacy/cipher.js', async (original) => {
  const actual = await original<typeof import('../../src/privacy/cipher.js')>();
  return { ...actual, openValue: vi.fn(actual.openValue) };
});

const logger = pino({ level: 'silent' });
const provider = new LocalKeyProvider(randomBytes(32));
let db: TestDatabase;
const stores: PgSubjectKeyStore[] = [];
const caches: SubjectKeys[] = [];

async function shard(): Promise<{ store: PgSubjectKeyStore; keys: SubjectKeys; data: PersonalData }> {
  const store = new PgSubjectKeyStore({ connectionString: db.url });
  const keys = new SubjectKeys(store, provider, logger);
  await keys.start();
  stores.push(store);
  caches.push(keys);
  return { store, keys, data: new PersonalData(keys) };
}

const address = { name: 'Ada Lovelace', line1: '12 St James Sq', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };
const placed = (customerId: string): NewEvent => ({
  type: 'OrderPlaced',
  schemaVersion: 1,
  data: { customerId, customerEmail: `${customerId}@example.com`, shippingAddress: address, placedAt: '2026-01-01T00:00:00.000Z' },
  metadata: { principal: 'p', tenant: '' },
});
const stored = (streamId: string, e: NewEvent): StoredEvent => ({ ...e, streamId, version: 1, position: 1n, recordedAt: new Date() });

async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('not within 2 s');
}

beforeAll(async () => {
  db = await createTestDatabase('sw_keys');
  const ring = new PgRingStore({ connectionString: db.url });
  await ring.migrate();
  await ring.close();
});

afterAll(async () => {
  for (const k of caches) await k.close();
  for (const s of stores) await s.close();
  await db.drop();
});

describe('subject keys in the ring database', () => {
  it('gives every shard the same key for a subject, however many create it at once', async () => {
    const [a, b] = [await shard(), await shard()];
    const subjects = Array.from({ length: 20 }, (_, i) => `race-${i}`);
    const [ka, kb] = await Promise.all([a.keys.forWriting(subjects), b.keys.forWriting([...subjects].reverse())]);
    for (const s of subjects) {
      const x = ka.get(s);
      const y = kb.get(s);
      expect(x !== 'erased' && y !== 'erased' && x!.key.equals(y!.key)).toBe(true);
    }
  });

  it('seals personal fields so another shard opens them, and passes other events untouched', async () => {
    const [a, b] = [await shard(), await shard()];
    const other: NewEvent = { type: 'OrderCancelled', schemaVersion: 1, data: { reason: 'x', cancelledAt: 't' }, metadata: {} };
    const sealed = await a.data.seal('order-header-o1', orderHeader, [
      { firstVersion: 1, events: [placed('c-open')] },
      { firstVersion: 2, events: [other] },
    ]);
    const event = sealed.stored[0]![0]!;
    expect(sealed.stored[1]![0]).toBe(other);
    expect(JSON.stringify(event.data)).not.toMatch(/c-open@example|Lovelace|James/);
    expect(event.metadata[SUBJECT_METADATA_KEY]).toBe('c-open');
    const [opened] = await b.data.reveal(orderHeader, [stored('order-header-o1', event)]);
    expect(opened!.data).toEqual(placed('c-open').data);
    const text = b.data.revealText(
      orderHeader,
      { streamId: 'order-header-o1', version: 1, type: 'OrderPlaced', data: JSON.stringify(event.data), metadata: JSON.stringify(event.metadata) },
      await b.data.keysForRows([{ metadata: JSON.stringify(event.metadata) }]),
    );
    expect(JSON.parse(text)).toEqual(placed('c-open').data);
  });

  it('opens what it sealed itself lately without deciphering it, only where it was sealed for, and forgets it at an erasure', async () => {
    const [a, b] = [await shard(), await shard()];
    const opened = vi.mocked(openValue);
    const sealed = (await a.data.seal('order-header-o9', orderHeader, [{ firstVersion: 1, events: [placed('c-recent')] }])).stored[0]![0]!;
    const row = (version: number) => ({ streamId: 'order-header-o9', version, type: 'OrderPlaced', data: JSON.stringify(sealed.data), metadata: JSON.stringify(sealed.metadata) });
    const keysA = await a.data.keysForRows([row(1)]);
    opened.mockClear();
    expect(JSON.parse(a.data.revealText(orderHeader, row(1), keysA))).toEqual(placed('c-recent').data);
    expect(opened).not.toHaveBeenCalled();
    // Another shard never sealed it: it deciphers.
    expect(JSON.parse(b.data.revealText(orderHeader, row(1), await b.data.keysForRows([row(1)])))).toEqual(placed('c-recent').data);
    expect(opened).toHaveBeenCalledTimes(2);
    // The same sealed text somewhere else is not recalled: it fails authentication as it would have.
    expect(JSON.parse(a.data.revealText(orderHeader, row(2), keysA))).toMatchObject({ customerEmail: UNREADABLE, shippingAddress: UNREADABLE });
    // Erased: nothing is recalled, whatever keys the caller still holds.
    await a.store.erase('c-recent');
    await eventually(async () => !a.keys.cachedSubjects.includes('c-recent'));
    opened.mockClear();
    expect(JSON.parse(a.data.revealText(orderHeader, row(1), await a.data.keysForRows([row(1)])))).toMatchObject({ customerEmail: ERASED, shippingAddress: ERASED });
    // And what it had at hand is forgotten: a caller with keys from before the erasure gets the cipher's answer, not a memory.
    opened.mockClear();
    a.data.revealText(orderHeader, row(1), keysA);
    expect(opened).toHaveBeenCalledTimes(2);
  });

  it('erases a subject on every shard: cached keys are dropped at once, its fields read [erased], new ones are refused', async () => {
    const [a, b] = [await shard(), await shard()];
    const sealed = await a.data.seal('order-header-o2', orderHeader, [{ firstVersion: 1, events: [placed('c-gone')] }]);
    await b.keys.forReading(['c-gone']);
    expect(b.keys.cachedSubjects).toContain('c-gone');
    const generation = b.data.generation;
    expect(await a.store.erase('c-gone')).toMatchObject({ destroyed: true });
    await eventually(async () => !b.keys.cachedSubjects.includes('c-gone'));
    expect(b.data.generation).toBeGreaterThan(generation);
    const [opened] = await b.data.reveal(orderHeader, [stored('order-header-o2', sealed.stored[0]![0]!)]);
    expect(opened!.data).toMatchObject({ customerEmail: ERASED, shippingAddress: ERASED, customerId: 'c-gone' });
    const again = await b.data.seal('order-header-o3', orderHeader, [{ firstVersion: 1, events: [placed('c-gone')] }]);
    expect(again.refused).toEqual(['c-gone']);
    expect(again.stored).toEqual([[]]);
  });

  it("never re-creates an erased subject's key, also for a subject erased before it had one", async () => {
    const { store, keys } = await shard();
    expect(await store.erase('c-never')).toMatchObject({ destroyed: true });
    expect(await store.erase('c-never')).toMatchObject({ destroyed: false });
    expect((await keys.forWriting(['c-never'])).get('c-never')).toBe('erased');
    expect((await store.createMissing(new Map([['c-never', randomBytes(60)]]), provider.keyId)).get('c-never')).toBe('erased');
  });

  it('re-enables a subject with a new key: new data opens, data sealed before the erasure stays [erased]', async () => {
    const { store, keys, data } = await shard();
    const before = await data.seal('order-header-o4', orderHeader, [{ firstVersion: 1, events: [placed('c-back')] }]);
    await store.erase('c-back');
    keys.forget('c-back');
    expect(await store.reenable('c-back', await provider.wrap('c-back', randomBytes(32)), provider.keyId)).toBe(true);
    expect(await store.reenable('c-back', await provider.wrap('c-back', randomBytes(32)), provider.keyId)).toBe(false);
    keys.forget('c-back');
    const after = await data.seal('order-header-o5', orderHeader, [{ firstVersion: 1, events: [placed('c-back')] }]);
    const [old, fresh] = await data.reveal(orderHeader, [stored('order-header-o4', before.stored[0]![0]!), stored('order-header-o5', after.stored[0]![0]!)]);
    expect(old!.data).toMatchObject({ customerEmail: ERASED });
    expect(fresh!.data).toMatchObject({ customerEmail: 'c-back@example.com' });
  });

  it('encodes a live-tail row again for the subscribers that read it after its subject was erased', async () => {
    const { store, data } = await shard();
    const sealed = (await data.seal('order-header-o6', orderHeader, [{ firstVersion: 1, events: [placed('c-tail')] }])).stored[0]![0]!;
    // One row of the shared live-tail buffer: every subscriber reads this same object.
    const row: FeedRow = {
      at: { tx: 1n, position: 1n },
      streamId: 'order-header-o6',
      version: 1,
      type: 'OrderPlaced',
      schemaVersion: 1,
      data: JSON.stringify(sealed.data),
      metadata: JSON.stringify(sealed.metadata),
      recordedAt: new Date(),
      eventId: '00000000-0000-0000-0000-000000000001',
      origin: undefined,
      bytes: 500,
    };
    const reader = { tail: async () => START, copiedUpTo: async () => new Map(), page: async () => [], committedAfter: async () => false } as unknown as PgFeedReader;
    // The live tail is real; what it polls is this one row, the same object every time.
    const polled = { tail: async () => START, page: async (after: { position: bigint }) => (after.position < 1n ? [row] : []) } as unknown as PgFeedReader;
    const tail = new LiveTail(polled, { pollMs: 5 });
    const method = loadApi().shardwrite.v1.SubscriptionService.service.Subscribe;
    const dataOf = (event: Buffer) => method.responseDeserialize(eventResponse(event, 'c')).event!.data;
    const deliver = async (): Promise<Record<string, unknown>> => {
      const stop = new AbortController();
      const feed = { shardId: 'shard-0', reader, tail, deciders: new Map([['order-header', orderHeader]]), parseStreamId: streamIdParser(['order-header']), personalData: data };
      for await (const items of followShard(feed, { after: START }, { aggregateTypes: new Set(), eventTypes: new Set(), partitions: undefined }, stop.signal)) {
        const event = items.find((i) => i.event)?.event;
        if (!event) continue;
        stop.abort();
        return JSON.parse(dataOf(event.event as Buffer)) as Record<string, unknown>;
      }
      throw new Error('no event');
    };
    expect(await deliver()).toMatchObject({ customerEmail: 'c-tail@example.com' });
    await store.erase('c-tail');
    await eventually(async () => (await deliver()).customerEmail === ERASED);
  });

  it('answers STORE_UNAVAILABLE (retryable) when the ring database cannot be reached, and seals nothing', async () => {
    const store = new PgSubjectKeyStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none', timeoutMs: 300 });
    const keys = new SubjectKeys(store, provider, logger, { relistenMs: 60_000 });
    stores.push(store);
    caches.push(keys);
    await keys.start();
    const data = new PersonalData(keys);
    await expect(data.seal('order-header-o7', orderHeader, [{ firstVersion: 1, events: [placed('c-down')] }])).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(data.reveal(orderHeader, [stored('order-header-o7', { ...placed('c-down'), metadata: { [SUBJECT_METADATA_KEY]: 'c-down' } })])).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('leaves the personal fields out of copies that need none', () => {
    const json = JSON.stringify(placed('c-pm').data);
    expect(JSON.parse(withoutPersonalData(orderHeader, 'OrderPlaced', json))).toEqual({ customerId: 'c-pm', placedAt: '2026-01-01T00:00:00.000Z' });
    expect(withoutPersonalData(orderHeader, 'OrderCancelled', '{"reason":"r"}')).toBe('{"reason":"r"}');
  });
});

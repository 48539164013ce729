import { describe, expect, it } from 'vitest';
import { loadApi } from '../../src/grpc/proto.js';
import { CAUGHT_UP_RESPONSE, FELL_BEHIND_RESPONSE, checkpointResponse, encodeEvent, encodeResponses, eventResponse, type EventFields } from '../../src/subscriptions/event-codec.js';

const method = loadApi().shardwrite.v1.SubscriptionService.service.Subscribe;
const decode = (b: Buffer) => method.responseDeserialize(b);

const fields: EventFields = {
  eventId: '3f2a1b4c-1111-2222-3333-444455556666',
  aggregateType: 'order-lines',
  aggregateId: 'ördér-1 ✓',
  streamId: 'order-lines-ördér-1 ✓',
  version: 2 ** 40 + 3,
  type: 'OrderLineAdded',
  schemaVersion: 2,
  data: JSON.stringify({ sku: 'S', note: 'x'.repeat(300), emoji: '🚀' }),
  recordedAtMs: 1_733_456_789_123,
  metadata: { command_id: 'c-1', correlation_id: 'ç' },
  shardId: 'shard-2',
};

describe('the hand-written SubscribedEvent encoding', () => {
  it('decodes with protobufjs to exactly the fields it was given, with the checkpoint appended', () => {
    const r = decode(eventResponse(encodeEvent(fields), 'token-after-it'));
    expect(r.kind).toBe('event');
    expect(r.event).toEqual({
      eventId: fields.eventId,
      aggregateType: fields.aggregateType,
      aggregateId: fields.aggregateId,
      streamId: fields.streamId,
      version: String(fields.version),
      type: fields.type,
      schemaVersion: 2,
      data: fields.data,
      recordedAt: { seconds: '1733456789', nanos: 123_000_000 },
      metadata: fields.metadata,
      checkpoint: 'token-after-it',
      shardId: 'shard-2',
    });
  });

  it('leaves out empty and zero values as proto3 does, and still decodes them as defaults', () => {
    const r = decode(eventResponse(encodeEvent({ ...fields, data: '', metadata: {}, recordedAtMs: 5000, schemaVersion: 0 }), 'c'));
    expect(r.event).toMatchObject({ data: '', metadata: {}, recordedAt: { seconds: '5', nanos: 0 }, schemaVersion: 0 });
  });

  it('encodes the other responses', () => {
    const long = 'x'.repeat(5000);
    expect(decode(checkpointResponse(long))).toMatchObject({ kind: 'checkpoint', checkpoint: long });
    expect(decode(CAUGHT_UP_RESPONSE).kind).toBe('caughtUp');
    expect(decode(FELL_BEHIND_RESPONSE).kind).toBe('fellBehind');
  });
});

describe('batched responses', () => {
  const events = [0, 1, 2, 3, 4].map((i) => encodeEvent({ ...fields, version: i + 1, eventId: `id-${i}` }));
  const ready = [
    { event: events[0]!, checkpoint: 'c0' },
    { event: events[1]!, checkpoint: 'c1' },
    CAUGHT_UP_RESPONSE,
    { event: events[2]!, checkpoint: 'c2' },
    { event: events[3]!, checkpoint: 'c3' },
    { event: events[4]!, checkpoint: 'c4' },
  ];

  it('groups runs of events into batches of at most max_batch, in order, around other responses', () => {
    const decoded = encodeResponses(ready, 2).map(decode);
    expect(decoded.map((r) => r.kind)).toEqual(['events', 'caughtUp', 'events', 'events']);
    const batches = decoded.filter((r) => r.events).map((r) => r.events!.events.map((e) => `${e.eventId}@${e.checkpoint}`));
    expect(batches).toEqual([['id-0@c0', 'id-1@c1'], ['id-2@c2', 'id-3@c3'], ['id-4@c4']]);
    expect(decoded[0]!.events!.events[1]).toMatchObject({ version: '2', streamId: fields.streamId, metadata: fields.metadata });
  });

  it('sends one event per response without max_batch', () => {
    expect(encodeResponses(ready, 0).map((r) => decode(r).kind)).toEqual(['event', 'event', 'caughtUp', 'event', 'event', 'event']);
  });
});

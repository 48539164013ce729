import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isValidSubjectPrefix, subjectOf, subjectToken, toBusMessage } from '../../relay/bus.js';
import type { ReceivedEvent } from '../../src/client/index.js';
import { expectThrow } from '../support/expect-error.js';

const event: ReceivedEvent = {
  eventId: '0193-abc',
  aggregateType: 'order-header',
  aggregateId: 'o-1',
  streamId: 'order-header-o-1',
  version: 3,
  type: 'OrderShipped',
  schemaVersion: 1,
  data: { carrier: 'ups' },
  rawData: '{"carrier":"ups"}',
  recordedAt: new Date('2026-01-02T03:04:05.678Z'),
  metadata: { tenant: 't1' },
  checkpoint: 'tok',
  shardId: 'shard-1',
};

describe('subjects', () => {
  it('names an event <prefix>.<aggregate_type>.<aggregate_id>', () => {
    expect(subjectOf('shardwrite', event)).toBe('shardwrite.order-header.o-1');
    expect(subjectOf('test.run42', event)).toBe('test.run42.order-header.o-1');
  });

  it('keeps an id with dots, wildcards or spaces inside one token', () => {
    expect(subjectToken('a.b')).toBe('a%2Eb');
    expect(subjectToken('*>')).toBe('%2A%3E');
    expect(subjectToken('100%')).toBe('100%25');
    expect(subjectToken('a b\t')).toBe('a%20b%09');
    expect(subjectToken('é')).toBe('%C3%A9');
    expect(subjectToken('ord:1_x-Y')).toBe('ord:1_x-Y');
    expectThrow(() => subjectToken(''), RangeError);
  });

  it('gives distinct ids distinct tokens, each a valid NATS token', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), fc.string({ minLength: 1, unit: 'grapheme' }), (a, b) => {
        const ta = subjectToken(a);
        expect(ta).toMatch(/^[\x21-\x7e]+$/);
        expect(ta).not.toMatch(/[.*>]/);
        if (a !== b) expect(ta).not.toBe(subjectToken(b));
      }),
    );
  });

  it('accepts prefixes of plain dot-separated tokens only', () => {
    for (const ok of ['shardwrite', 'test.run-1', 'a_b.c']) expect(isValidSubjectPrefix(ok)).toBe(true);
    for (const bad of ['', '.a', 'a.', 'a..b', 'a.*', 'a.>', 'a b', 'a.b.']) expect(isValidSubjectPrefix(bad)).toBe(false);
  });
});

describe('toBusMessage', () => {
  it('uses the event id as the de-duplication id and carries the whole event as JSON', () => {
    const m = toBusMessage('shardwrite', event);
    expect(m.id).toBe('0193-abc');
    expect(m.subject).toBe('shardwrite.order-header.o-1');
    expect(JSON.parse(Buffer.from(m.payload).toString('utf8'))).toEqual({
      eventId: '0193-abc',
      aggregateType: 'order-header',
      aggregateId: 'o-1',
      streamId: 'order-header-o-1',
      version: 3,
      type: 'OrderShipped',
      schemaVersion: 1,
      recordedAt: '2026-01-02T03:04:05.678Z',
      metadata: { tenant: 't1' },
      data: { carrier: 'ups' },
      shardId: 'shard-1',
    });
    expect(m.headers).toEqual({ 'Shardwrite-Event-Type': 'OrderShipped', 'Shardwrite-Stream-Id': 'order-header-o-1', 'Shardwrite-Version': '3' });
  });

  it("carries the event's trace context as a traceparent header, when it recorded a well-formed one", () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(toBusMessage('shardwrite', { ...event, metadata: { tenant: 't1', traceparent } }).headers.traceparent).toBe(traceparent);
    expect(toBusMessage('shardwrite', { ...event, metadata: { tenant: 't1', traceparent: 'not-a-traceparent' } }).headers).not.toHaveProperty('traceparent');
  });
});

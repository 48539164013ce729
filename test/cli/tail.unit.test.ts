import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { describeProgress, formatEventJson, formatEventLine, parseTailArgs } from '../../cli/tail.js';
import type { ReceivedEvent } from '../../src/client/index.js';

const event: ReceivedEvent = {
  eventId: 'e1',
  aggregateType: 'order-header',
  aggregateId: 'o1',
  streamId: 'order-header-o1',
  version: 2,
  type: 'OrderShipped',
  schemaVersion: 1,
  data: { carrier: 'ups', trackingNumber: '1Z' },
  rawData: '{"carrier": "ups", "trackingNumber": "1Z"}',
  recordedAt: new Date('2026-01-02T03:04:05Z'),
  metadata: {},
  checkpoint: 'tok',
  shardId: 'shard-2',
};

describe('shardwrite tail arguments', () => {
  it('follows everything from now on by default', () => {
    expect(parseTailArgs([])).toEqual({ aggregateTypes: [], eventTypes: [], from: 'end', address: undefined, token: undefined, json: false });
  });

  it('reads filters (repeated or comma-separated), the start, the address and --json', () => {
    expect(
      parseTailArgs(['--type', 'order-header', '--type=order-lines,order-payment', '--event-type', 'OrderPlaced', '--from', '', '--address', 'localhost:50051', '--token', 's3cret', '--json']),
    ).toEqual({
      aggregateTypes: ['order-header', 'order-lines', 'order-payment'],
      eventTypes: ['OrderPlaced'],
      from: '',
      address: 'localhost:50051',
      token: 's3cret',
      json: true,
    });
    expect(parseTailArgs(['--from', 'beginning'])).toMatchObject({ from: '' });
    expect(parseTailArgs(['--from=eyJ2IjoxfQ'])).toMatchObject({ from: 'eyJ2IjoxfQ' });
  });

  it('refuses what it does not understand', () => {
    expect(parseTailArgs(['--type'])).toBe('--type needs a value');
    expect(parseTailArgs(['--type', '--json'])).toBe('--type needs a value');
    expect(parseTailArgs(['--address', 'nope'])).toMatch(/host:port/);
    expect(parseTailArgs(['--follow'])).toBe('unknown option --follow');
    expect(parseTailArgs(['order-header'])).toMatch(/unexpected argument/);
  });
});

describe('shardwrite tail output', () => {
  it('prints one line per event: shard, stream, version, type, compact data', () => {
    expect(formatEventLine(event)).toBe('shard-2  order-header-o1  v2  OrderShipped  {"carrier":"ups","trackingNumber":"1Z"}');
    expect(formatEventLine(event, 10)).toBe('shard-2  order-header-o1  v2  OrderShipped  {"carrier…');
  });

  it('prints JSON lines with the data as a value', () => {
    expect(JSON.parse(formatEventJson(event))).toMatchObject({ eventId: 'e1', streamId: 'order-header-o1', version: 2, data: { carrier: 'ups' }, recordedAt: '2026-01-02T03:04:05.000Z' });
  });

  it('says when it caught up and when it reconnects, and nothing for a checkpoint', () => {
    expect(describeProgress({ kind: 'caught-up' })).toMatch(/caught up/);
    expect(describeProgress({ kind: 'checkpoint', checkpoint: 'x' })).toBeUndefined();
    expect(describeProgress({ kind: 'reconnecting', attempt: 1, delayMs: 80, from: 'x', status: { code: grpc.status.UNAVAILABLE, message: 'gone' } })).toBe(
      '— connection lost (UNAVAILABLE: gone); reconnecting in 80 ms —',
    );
  });
});

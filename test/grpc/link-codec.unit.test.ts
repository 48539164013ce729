import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { resolve } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { LINK_PROTO, LINK_SERVICE, PROTO_DIR, linkDefinition } from '../../src/grpc/proto.js';
import { bytesField, decodeBatch, decodeHeaders, encodeBatch, encodeHeaders, encodedFrameSize, wrapField } from '../../src/grpc/link-codec.js';
import { ValidationError } from '../../src/errors.js';
import { expectThrow } from '../support/expect-error.js';

const root = protobuf.loadSync(resolve(PROTO_DIR, LINK_PROTO));
const Batch = root.lookupType('shardwrite.internal.v1.LinkBatch');

const frames = [
  { id: 1, body: Buffer.from('hello'), timeoutMs: 0, headers: encodeHeaders([]) },
  {
    id: 300,
    body: Buffer.alloc(200, 7),
    timeoutMs: 1500,
    // Entries after others already encoded (a traced command's traceparent after its call's entries).
    headers: encodeHeaders([['x-correlation-id', 'ü-1']], encodeHeaders([['authorization', 'Bearer t']])),
  },
  { id: 0xffffffff, body: Buffer.alloc(0), timeoutMs: 0xffffffff, headers: encodeHeaders([['k', '']]) },
];

describe('the link codec', () => {
  it('encodes what protobufjs decodes as shardwrite.internal.v1.LinkBatch', () => {
    const decoded = Batch.toObject(Batch.decode(encodeBatch(frames)), { longs: Number, defaults: true }) as {
      frames: { id: number; body: Uint8Array; timeoutMs: number; headers: { key: string; value: string }[] }[];
    };
    expect(decoded.frames).toHaveLength(3);
    expect(decoded.frames[1]).toMatchObject({
      id: 300,
      timeoutMs: 1500,
      headers: [
        { key: 'authorization', value: 'Bearer t' },
        { key: 'x-correlation-id', value: 'ü-1' },
      ],
    });
    expect(Buffer.from(decoded.frames[1]!.body)).toEqual(Buffer.alloc(200, 7));
    expect(decoded.frames[2]).toMatchObject({ id: 0xffffffff, timeoutMs: 0xffffffff, headers: [{ key: 'k', value: '' }] });
    expect(frames.reduce((n, f) => n + encodedFrameSize(f), 0)).toBe(encodeBatch(frames).length);
  });

  it('decodes what protobufjs encodes, headers included, bodies as views', () => {
    const bytes = Buffer.from(
      Batch.encode(
        Batch.fromObject({
          frames: [
            {
              id: 7,
              body: Buffer.from('abc'),
              timeoutMs: 25,
              headers: [
                { key: 'a', value: '1' },
                { key: 'b', value: '2' },
              ],
            },
            { id: 8, body: Buffer.from('') },
          ],
        }),
      ).finish(),
    );
    const out = decodeBatch(bytes);
    expect(out.map((f) => ({ id: f.id, body: Buffer.from(f.body).toString(), timeoutMs: f.timeoutMs, headers: decodeHeaders(f.headers) }))).toEqual([
      {
        id: 7,
        body: 'abc',
        timeoutMs: 25,
        headers: [
          ['a', '1'],
          ['b', '2'],
        ],
      },
      { id: 8, body: '', timeoutMs: 0, headers: [] },
    ]);
    expect(out[0]!.body.buffer).toBe(bytes.buffer);
  });

  it('refuses a malformed batch with a ValidationError', () => {
    const good = encodeBatch(frames);
    expectThrow(() => decodeBatch(good.subarray(0, good.length - 3)), ValidationError);
    expectThrow(() => decodeBatch(Buffer.from([0x0a, 0x05, 0x12, 0x09, 0x01])), ValidationError);
    expectThrow(() => decodeBatch(Buffer.from([(1 << 3) | 0, 1])), ValidationError);
  });

  it('wraps a message as a field and finds it again', () => {
    const wrapped = Buffer.concat([wrapField(1, Buffer.from('id')), wrapField(3, Buffer.from('status'))]);
    expect(bytesField(wrapped, 3)?.toString()).toBe('status');
    expect(bytesField(wrapped, 2)).toBeUndefined();
  });

  it('names the service the proto declares', () => {
    const def = protoLoader.loadSync(LINK_PROTO, { includeDirs: [PROTO_DIR] });
    const service = def[LINK_SERVICE] as Record<string, { path: string; requestStream: boolean; responseStream: boolean }>;
    expect(service.Execute).toMatchObject({ path: linkDefinition().path, requestStream: true, responseStream: true });
  });
});

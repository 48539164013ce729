/**
 * Subscribed events encoded once, by hand, at the shard that reads them:
 * neither the shard nor the router builds a message object per event, and
 * the router forwards the shard's bytes, adding only the checkpoint.
 *
 * An encoded event is a `shardwrite.v1.SubscribedEvent` without its
 * `checkpoint` (field 11); whoever delivers it appends that field once.
 * test/subscriptions/event-codec.unit.test.ts checks every encoding against
 * protobufjs and the proto.
 */
import { LEN } from '../grpc/wire-scan.js';

/** What a shard encodes of one event. */
export interface EventFields {
  readonly eventId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly schemaVersion: number;
  /** JSON text. */
  readonly data: string;
  readonly recordedAtMs: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly shardId: string;
}

// SubscribedEvent's field numbers (proto/shardwrite/v1/subscriptions.proto).
const F = { eventId: 1, aggregateType: 2, aggregateId: 3, streamId: 4, version: 5, type: 6, schemaVersion: 7, data: 8, recordedAt: 9, metadata: 10, checkpoint: 11, shardId: 12 };
// SubscribeResponse's oneof members.
const R = { event: 1, checkpoint: 2, caughtUp: 3, fellBehind: 4, events: 5 };

/** A growable protobuf writer for the few shapes above. */
class Writer {
  buf: Buffer;
  pos = 0;

  /** `size`: what it will hold, when known (then `finish` copies nothing). */
  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(n: number): void {
    this.ensure(10);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A string field (omitted when empty, as proto3 does). */
  string(field: number, s: string): void {
    if (s.length === 0) return;
    const n = Buffer.byteLength(s, 'utf8');
    this.tag(field, LEN);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** A non-negative integer field (omitted when 0). */
  uint(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, 0);
    this.varint(n);
  }

  /** What was written; a copy only when the buffer is larger (or shared: see `scratch`). */
  finish(): Buffer {
    return this === scratch || this.pos < this.buf.length ? Buffer.from(this.buf.subarray(0, this.pos)) : this.buf;
  }
}

/** Reused by the encoders whose size is not known up front (each one copies its result out). */
const scratch = new Writer(4096);
const fresh = (): Writer => {
  scratch.pos = 0;
  return scratch;
};

const sizeOfVarint = (n: number) => {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
};
const sizeOfString = (field: number, s: string) => {
  if (s.length === 0) return 0;
  const n = Buffer.byteLength(s, 'utf8');
  return sizeOfVarint(field << 3) + sizeOfVarint(n) + n;
};

/** A SubscribedEvent without its checkpoint. */
export function encodeEvent(e: EventFields): Buffer {
  const w = fresh();
  w.string(F.eventId, e.eventId);
  w.string(F.aggregateType, e.aggregateType);
  w.string(F.aggregateId, e.aggregateId);
  w.string(F.streamId, e.streamId);
  w.uint(F.version, e.version);
  w.string(F.type, e.type);
  w.uint(F.schemaVersion, e.schemaVersion);
  w.string(F.data, e.data);
  const seconds = Math.floor(e.recordedAtMs / 1000);
  const nanos = (e.recordedAtMs - seconds * 1000) * 1_000_000;
  const ts = (seconds === 0 ? 0 : 1 + sizeOfVarint(seconds)) + (nanos === 0 ? 0 : 1 + sizeOfVarint(nanos));
  w.tag(F.recordedAt, LEN);
  w.varint(ts);
  w.uint(1, seconds);
  w.uint(2, nanos);
  for (const [k, v] of Object.entries(e.metadata)) {
    w.tag(F.metadata, LEN);
    w.varint(sizeOfString(1, k) + sizeOfString(2, v));
    w.string(1, k);
    w.string(2, v);
  }
  w.string(F.shardId, e.shardId);
  return w.finish();
}

/** A SubscribeResponse carrying `event` (as `encodeEvent` made it) with `checkpoint`. */
export function eventResponse(event: Uint8Array, checkpoint: string): Buffer {
  const inner = event.length + sizeOfString(F.checkpoint, checkpoint);
  const w = new Writer(1 + sizeOfVarint(inner) + inner);
  w.tag(R.event, LEN);
  w.varint(inner);
  w.buf.set(event, w.pos);
  w.pos += event.length;
  w.string(F.checkpoint, checkpoint);
  return w.finish();
}

/** A SubscribeResponse carrying a checkpoint. */
export function checkpointResponse(checkpoint: string): Buffer {
  const w = fresh();
  w.tag(R.checkpoint, LEN);
  const n = Buffer.byteLength(checkpoint, 'utf8');
  w.varint(n);
  w.ensure(n);
  w.pos += w.buf.write(checkpoint, w.pos, 'utf8');
  return w.finish();
}

export const CAUGHT_UP_RESPONSE = Buffer.from([(R.caughtUp << 3) | LEN, 0]);
export const FELL_BEHIND_RESPONSE = Buffer.from([(R.fellBehind << 3) | LEN, 0]);

/** What a subscription sends next: an event (as `encodeEvent` made it) with its checkpoint, or an encoded response. */
export type Outgoing = { readonly event: Uint8Array; readonly checkpoint: string } | Buffer;

/**
 * The responses for `out`, in order: with `maxBatch` above 1, runs of events
 * go out as `events` batches of up to `maxBatch` (what is ready at once;
 * nothing waits for a batch to fill), else one `event` per response.
 */
export function encodeResponses(out: readonly Outgoing[], maxBatch: number): Buffer[] {
  const responses: Buffer[] = [];
  let run: { readonly event: Uint8Array; readonly checkpoint: string; readonly size: number }[] = [];
  let runSize = 0;
  // Each event goes into its batch once, with its checkpoint appended in place.
  const flush = () => {
    if (run.length === 0) return;
    const w = new Writer(1 + sizeOfVarint(runSize) + runSize);
    w.tag(R.events, LEN);
    w.varint(runSize);
    for (const e of run) {
      w.tag(1, LEN);
      w.varint(e.size);
      w.buf.set(e.event, w.pos);
      w.pos += e.event.length;
      w.string(F.checkpoint, e.checkpoint);
    }
    responses.push(w.finish());
    run = [];
    runSize = 0;
  };
  for (const item of out) {
    if (Buffer.isBuffer(item)) {
      flush();
      responses.push(item);
    } else if (maxBatch <= 1) responses.push(eventResponse(item.event, item.checkpoint));
    else {
      const size = item.event.length + sizeOfString(F.checkpoint, item.checkpoint);
      run.push({ event: item.event, checkpoint: item.checkpoint, size });
      runSize += 1 + sizeOfVarint(size) + size;
      if (run.length >= maxBatch) flush();
    }
  }
  flush();
  return responses;
}

/**
 * The wire format of the router-to-shard link (`shardwrite.internal.v1`,
 * proto/shardwrite/internal/v1/shard_link.proto), encoded and decoded by hand:
 * a batch is a flat list of frames, and each frame's body stays the caller's
 * bytes, copied once into the batch and sliced (not copied) out of it.
 * test/grpc/link-codec.unit.test.ts checks it against protobufjs and the proto.
 */
import { LEN, VARINT, readTag, readVarint, skip, type Cursor } from './wire-scan.js';
import { ValidationError } from '../errors.js';

/**
 * A sender starts a new batch rather than grow one past this many bytes (a
 * single frame may be larger: it goes alone).
 */
export const LINK_BATCH_BYTES = 256 * 1024;
/**
 * The most a frame adds to the request it carries: its id, timeout and the
 * caller's metadata (which grpc-js bounds at 8 KiB by default). A shard
 * accepts link messages this much larger than its request limit.
 */
export const LINK_FRAMING_BYTES = 64 * 1024;

/** A frame as decoded: its body and headers are views into the batch. */
export interface DecodedFrame extends LinkFrame {
  readonly body: Buffer;
}

/** The size of one frame inside a batch. */
export function encodedFrameSize(f: LinkFrame): number {
  const s = frameSize(f);
  return 1 + varintSize(s) + s;
}

export interface LinkFrame {
  /** The router's id for the command, echoed on its outcome. */
  readonly id: number;
  /** An encoded StreamedCommand (to the shard) or StreamedOutcome (back). */
  readonly body: Uint8Array;
  /** The caller's remaining deadline in ms; 0 = none. */
  readonly timeoutMs: number;
  /** Encoded `headers` fields (see `encodeHeaders`), or empty. */
  readonly headers: Uint8Array;
}

// Field numbers of LinkBatch (FRAMES) and LinkFrame.
const FRAMES = 1;
const ID = 1;
const BODY = 2;
const TIMEOUT = 3;
const HEADERS = 4;
/** A frame without headers. */
export const NO_HEADERS = new Uint8Array(0);

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  let v = n;
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/**
 * The `headers` fields of a frame for these metadata entries (after `base`,
 * fields already encoded), in one buffer: encoded once per call and reused,
 * or per traced command (its span's `traceparent` after its call's entries).
 */
export function encodeHeaders(entries: readonly (readonly [string, string])[], base: Uint8Array = NO_HEADERS): Uint8Array {
  if (entries.length === 0) return base;
  let size = base.length;
  const lengths: number[] = [];
  for (const [key, value] of entries) {
    const k = Buffer.byteLength(key, 'utf8');
    const v = Buffer.byteLength(value, 'utf8');
    const inner = 1 + varintSize(k) + k + 1 + varintSize(v) + v;
    lengths.push(k, v, inner);
    size += 1 + varintSize(inner) + inner;
  }
  const out = Buffer.allocUnsafe(size);
  out.set(base, 0);
  let p = base.length;
  entries.forEach(([key, value], i) => {
    p = writeVarint(out, p, (HEADERS << 3) | LEN);
    p = writeVarint(out, p, lengths[3 * i + 2]!);
    p = writeVarint(out, p, (1 << 3) | LEN);
    p = writeVarint(out, p, lengths[3 * i]!);
    p += out.write(key, p, 'utf8');
    p = writeVarint(out, p, (2 << 3) | LEN);
    p = writeVarint(out, p, lengths[3 * i + 1]!);
    p += out.write(value, p, 'utf8');
  });
  return out;
}

function frameSize(f: LinkFrame): number {
  return (f.id > 0 ? 1 + varintSize(f.id) : 0) + 1 + varintSize(f.body.length) + f.body.length + (f.timeoutMs > 0 ? 1 + varintSize(f.timeoutMs) : 0) + f.headers.length;
}

/** Encodes a LinkBatch. */
export function encodeBatch(frames: readonly LinkFrame[]): Buffer {
  let size = 0;
  const sizes = frames.map((f) => {
    const s = frameSize(f);
    size += 1 + varintSize(s) + s;
    return s;
  });
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  frames.forEach((f, i) => {
    p = writeVarint(out, p, (FRAMES << 3) | LEN);
    p = writeVarint(out, p, sizes[i]!);
    if (f.id > 0) {
      out[p++] = (ID << 3) | VARINT;
      p = writeVarint(out, p, f.id);
    }
    out[p++] = (BODY << 3) | LEN;
    p = writeVarint(out, p, f.body.length);
    out.set(f.body, p);
    p += f.body.length;
    if (f.timeoutMs > 0) {
      out[p++] = (TIMEOUT << 3) | VARINT;
      p = writeVarint(out, p, f.timeoutMs);
    }
    out.set(f.headers, p);
    p += f.headers.length;
  });
  return out;
}

function malformed(description: string): ValidationError {
  return new ValidationError([{ field: 'batch', description: `malformed link batch: ${description}` }]);
}

function lengthDelimited(buf: Buffer, c: Cursor, wireType: number): Buffer {
  if (wireType !== LEN) throw malformed(`wire type ${wireType} where bytes were expected`);
  const length = readVarint(buf, c);
  if (length > c.end - c.pos) throw malformed('field runs past the end');
  const start = c.pos;
  c.pos += length;
  return buf.subarray(start, c.pos);
}

/**
 * Decodes a LinkBatch; bodies and headers are views into `buf`.
 *
 * @throws ValidationError when the batch is not well-formed.
 */
export function decodeBatch(buf: Buffer): DecodedFrame[] {
  return repeated(buf, FRAMES).map(decodeFrame);
}

/** The values (views into `buf`) of every length-delimited `field` in `buf`, in order; other fields are skipped. */
function repeated(buf: Buffer, field: number): Buffer[] {
  const values: Buffer[] = [];
  const c: Cursor = { pos: 0, end: buf.length };
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    if (tag >>> 3 === field) values.push(lengthDelimited(buf, c, tag & 7));
    else skip(buf, c, tag >>> 3, tag & 7, 0);
  }
  return values;
}

function decodeFrame(buf: Buffer): DecodedFrame {
  const c: Cursor = { pos: 0, end: buf.length };
  let id = 0;
  let body = buf.subarray(0, 0);
  let timeoutMs = 0;
  let headersFrom = -1;
  let headersTo = -1;
  while (c.pos < c.end) {
    const at = c.pos;
    const tag = readTag(buf, c);
    const field = tag >>> 3;
    if (field === ID && (tag & 7) === VARINT) id = readVarint(buf, c);
    else if (field === TIMEOUT && (tag & 7) === VARINT) timeoutMs = readVarint(buf, c);
    else if (field === BODY) body = lengthDelimited(buf, c, tag & 7);
    else {
      skip(buf, c, field, tag & 7, 0);
      // Headers are written last and together; keep them as one encoded run.
      if (field === HEADERS) {
        if (headersFrom < 0) headersFrom = at;
        headersTo = c.pos;
      }
    }
  }
  return { id, body, timeoutMs, headers: headersFrom < 0 ? NO_HEADERS : buf.subarray(headersFrom, headersTo) };
}

/** The key/value pairs of encoded `headers` fields. */
export function decodeHeaders(buf: Uint8Array): [string, string][] {
  const out: [string, string][] = [];
  for (const entry of repeated(Buffer.from(buf.buffer, buf.byteOffset, buf.length), HEADERS)) {
    const e: Cursor = { pos: 0, end: entry.length };
    let key = '';
    let value = '';
    while (e.pos < e.end) {
      const t = readTag(entry, e);
      if (t >>> 3 === 1) key = lengthDelimited(entry, e, t & 7).toString('utf8');
      else if (t >>> 3 === 2) value = lengthDelimited(entry, e, t & 7).toString('utf8');
      else skip(entry, e, t >>> 3, t & 7, 0);
    }
    out.push([key, value]);
  }
  return out;
}

/**
 * A length-delimited top-level field of a message (the last occurrence) as a
 * view into `buf`, or undefined when absent.
 *
 * @throws ValidationError when the message is not well-formed.
 */
export function bytesField(buf: Buffer, field: number): Buffer | undefined {
  const c: Cursor = { pos: 0, end: buf.length };
  let found: Buffer | undefined;
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    if (tag >>> 3 === field && (tag & 7) === LEN) found = lengthDelimited(buf, c, LEN);
    else skip(buf, c, tag >>> 3, tag & 7, 0);
  }
  return found;
}

/** StreamedOutcome's fields: `result` (a CommandResult) and `error` (a google.rpc.Status). */
export const OUTCOME_RESULT = 2;
export const OUTCOME_ERROR = 3;

/** An encoded StreamedOutcome's `error` (an encoded google.rpc.Status); undefined for a result, or for bytes that do not parse. */
export function outcomeError(outcome: Buffer): Buffer | undefined {
  try {
    return bytesField(outcome, OUTCOME_ERROR);
  } catch {
    return undefined;
  }
}

/** Wraps encoded `message` as field `field` of an enclosing message (a unary request in its oneof member). */
export function wrapField(field: number, message: Uint8Array): Buffer {
  const tag = (field << 3) | LEN;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(message.length) + message.length);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, message.length);
  out.set(message, p);
  return out;
}

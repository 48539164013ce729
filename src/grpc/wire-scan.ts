/**
 * Reads protobuf wire-format messages without decoding them: walks the
 * top-level fields (skipping each by its wire type, groups included) to find
 * one string field or one varint. Used where a full decode would be waste (the
 * router's routing keys and stream ids) or impossible (a frame that does not
 * decode as a whole, whose request id is still wanted).
 */
import { ValidationError } from '../errors.js';
import { typeNameOf } from './packed.js';

// The protobuf wire format: https://protobuf.dev/programming-guides/encoding/

export const VARINT = 0;
const I64 = 1;
export const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;
const MAX_FIELD_NUMBER = 2 ** 29 - 1;
/** Groups nested deeper than this are refused rather than recursed into. */
const MAX_GROUP_DEPTH = 32;

/** A read position in a message; one per extraction. */
export interface Cursor {
  pos: number;
  readonly end: number;
}

function malformed(description: string): ValidationError {
  return new ValidationError([{ field: 'request', description: `malformed protobuf message: ${description}` }]);
}

/** An unsigned varint as a safe integer (tags and lengths; larger values are malformed here). */
export function readVarint(buf: Uint8Array, c: Cursor): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (c.pos >= c.end) throw malformed('truncated varint');
    const byte = buf[c.pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw malformed('varint too long');
}

function skipVarint(buf: Uint8Array, c: Cursor): void {
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.end) throw malformed('truncated varint');
    if (buf[c.pos++]! < 0x80) return;
  }
  throw malformed('varint too long');
}

/** Reads a tag (field number × 8 + wire type) and checks its field number. */
export function readTag(buf: Uint8Array, c: Cursor): number {
  const tag = readVarint(buf, c);
  const field = Math.floor(tag / 8);
  if (field === 0 || field > MAX_FIELD_NUMBER) throw malformed(`invalid field number ${field}`);
  return tag;
}

/** Moves past a length-delimited payload and returns where it starts (it ends at the new position). */
function readLength(buf: Uint8Array, c: Cursor): number {
  const length = readVarint(buf, c);
  if (length > c.end - c.pos) throw malformed('length-delimited field runs past the end');
  const start = c.pos;
  c.pos += length;
  return start;
}

export function skip(buf: Uint8Array, c: Cursor, field: number, wireType: number, depth: number): void {
  switch (wireType) {
    case VARINT:
      skipVarint(buf, c);
      return;
    case I64:
      if (c.end - c.pos < 8) throw malformed('truncated fixed64');
      c.pos += 8;
      return;
    case LEN:
      readLength(buf, c);
      return;
    case I32:
      if (c.end - c.pos < 4) throw malformed('truncated fixed32');
      c.pos += 4;
      return;
    case SGROUP: {
      if (depth >= MAX_GROUP_DEPTH) throw malformed('groups nested too deeply');
      for (;;) {
        if (c.pos >= c.end) throw malformed('unterminated group');
        const tag = readTag(buf, c);
        if (tag % 8 === EGROUP) {
          if (Math.floor(tag / 8) !== field) throw malformed('mismatched end of group');
          return;
        }
        skip(buf, c, Math.floor(tag / 8), tag % 8, depth + 1);
      }
    }
    case EGROUP:
      throw malformed('end of group without a start');
    default:
      throw malformed(`invalid wire type ${wireType}`);
  }
}

function utf8(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

/**
 * The key in field `keyField` of a message: the last occurrence wins, as when
 * the shard decodes it. Every other field is skipped by its wire type.
 */
export function extractDirect(buf: Uint8Array, keyField: number, start = 0, end = buf.length): string {
  return extractInner(buf, keyField, start, end) ?? '';
}

/**
 * A oneof member that packs its message in a `google.protobuf.Any`: its field
 * number, Any's `type_url` and `value` field numbers, and the key field of
 * each message it may pack, by full name.
 */
export interface PackedMember {
  /** The member's name in the proto (`packed`), for the violation that names its type URL. */
  readonly name: string;
  readonly member: number;
  readonly typeUrlField: number;
  readonly valueField: number;
  /** The routing key's field number in the message `typeName` names; undefined when that message is not routed. */
  keyOf(typeName: string): number | undefined;
}

/**
 * The key inside whichever oneof member a message sets (`members` maps a
 * member's field number to its key's field number; `packed`, a member that
 * packs any routed message). As in decoding, the last member present wins,
 * and repeated occurrences of the same member merge.
 *
 * @throws ValidationError when the bytes are malformed, or a packed member
 *   names a message that is not routed.
 */
export function extractThroughOneof(buf: Uint8Array, members: ReadonlyMap<number, number>, packed?: PackedMember): string {
  const c: Cursor = { pos: 0, end: buf.length };
  let key = '';
  let lastMember = 0;
  const any: PackedScan = { typeUrl: '', value: undefined };
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    const keyField = members.get(field);
    const isPacked = packed !== undefined && field === packed.member;
    if (keyField === undefined && !isPacked) {
      skip(buf, c, field, wireType, 0);
      continue;
    }
    if (wireType !== LEN) throw malformed(`field ${field} has wire type ${wireType}, expected a message`);
    const from = readLength(buf, c);
    if (isPacked) {
      // A member set again after another one starts afresh; the same member merges.
      if (field !== lastMember) Object.assign(any, { typeUrl: '', value: undefined });
      scanPacked(buf, from, c.pos, packed, any);
    } else {
      const inner = extractInner(buf, keyField!, from, c.pos);
      if (field !== lastMember) key = inner ?? '';
      else if (inner !== undefined) key = inner;
    }
    lastMember = field;
  }
  if (packed === undefined || lastMember !== packed.member) return key;
  const packedKey = packed.keyOf(typeNameOf(any.typeUrl));
  if (packedKey === undefined) throw new ValidationError([{ field: `${packed.name}.type_url`, description: 'must name the request message of a routed command' }]);
  return any.value ? (extractInner(buf, packedKey, any.value.start, any.value.end) ?? '') : '';
}

/** What a packed member holds so far: its type URL, and where its value lies. */
interface PackedScan {
  typeUrl: string;
  value: { start: number; end: number } | undefined;
}

/** Reads one occurrence of a packed member (`buf[start..end)`) into `into`: the last `type_url` and `value` win. */
function scanPacked(buf: Uint8Array, start: number, end: number, packed: PackedMember, into: PackedScan): void {
  const c: Cursor = { pos: start, end };
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if ((field !== packed.typeUrlField && field !== packed.valueField) || wireType !== LEN) {
      if (field === packed.typeUrlField || field === packed.valueField) throw malformed(`packed field ${field} has wire type ${wireType}, expected bytes`);
      skip(buf, c, field, wireType, 0);
      continue;
    }
    const from = readLength(buf, c);
    if (field === packed.typeUrlField) into.typeUrl = utf8(buf, from, c.pos);
    else into.value = { start: from, end: c.pos };
  }
}

/** The last occurrence of string field `keyField` in `buf[start..end)`; `undefined` when absent (as opposed to empty). */
function extractInner(buf: Uint8Array, keyField: number, start: number, end: number): string | undefined {
  const c: Cursor = { pos: start, end };
  let key: string | undefined;
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field !== keyField) {
      skip(buf, c, field, wireType, 0);
      continue;
    }
    if (wireType !== LEN) throw malformed(`routing key field ${field} has wire type ${wireType}, expected a string`);
    const from = readLength(buf, c);
    key = utf8(buf, from, c.pos);
  }
  return key;
}

/** True when the message has top-level field `field` (false for a malformed message). */
export function hasField(buf: Uint8Array, field: number): boolean {
  const c: Cursor = { pos: 0, end: buf.length };
  try {
    while (c.pos < c.end) {
      const tag = readTag(buf, c);
      if (Math.floor(tag / 8) === field) return true;
      skip(buf, c, Math.floor(tag / 8), tag % 8, 0);
    }
  } catch {
    return false;
  }
  return false;
}

/** The value of top-level varint field `field` (last occurrence); 0 when absent or malformed. */
export function varintField(buf: Uint8Array, field: number): number {
  const c: Cursor = { pos: 0, end: buf.length };
  let value = 0;
  try {
    while (c.pos < c.end) {
      const tag = readTag(buf, c);
      if (Math.floor(tag / 8) === field && tag % 8 === VARINT) value = readVarint(buf, c);
      else skip(buf, c, Math.floor(tag / 8), tag % 8, 0);
    }
  } catch {
    return 0;
  }
  return value;
}

/**
 * String field `field` as a decoder would read it (last occurrence), or
 * `fallback` when the message's top level cannot be walked.
 */
export function stringFieldOr(buf: Uint8Array, field: number, fallback: string): string {
  try {
    return extractDirect(buf, field);
  } catch {
    return fallback;
  }
}

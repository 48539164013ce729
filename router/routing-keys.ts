/**
 * Where each request carries its routing key, found from the proto
 * definitions, and how to read that key from the request bytes without
 * decoding the message.
 *
 * A request field marked `[(shardwrite.v1.routing_key) = true]` holds the
 * aggregate id the request is routed by. It may sit directly in the request,
 * or one level down inside the message members of a oneof (a stream's
 * "one of these commands" envelope). Nothing here knows any service or
 * message by name: a new service or aggregate type marks its id field and is
 * routed.
 */
import protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ValidationError } from '../src/errors.js';
import { PROTO_DIR, PROTO_FILES } from '../src/grpc/proto.js';

/** Full name of the field option that marks a routing key. */
export const ROUTING_KEY_OPTION = '.shardwrite.v1.routing_key';

/** How one method's requests are routed. */
export interface MethodRoute {
  /** The gRPC path, `/package.Service/Method`. */
  readonly path: string;
  readonly requestType: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** Where the key is, for logs: `order_id (#1)` or `place_order.order_id (#2.1)`, … */
  readonly keyField: string;
  /**
   * The routing key of one encoded request message; `''` when the message
   * does not set it (the shard then refuses the request as invalid, as it
   * would without a router).
   *
   * @throws ValidationError when the bytes are not a well-formed protobuf
   *   message, or the key field has the wrong wire type.
   */
  extract(message: Uint8Array): string;
}

export interface RoutingTable {
  /** Routes by gRPC path. */
  readonly routes: ReadonlyMap<string, MethodRoute>;
  /** Methods whose request has no routing key, with why: the router cannot serve them. */
  readonly unroutable: readonly { path: string; reason: string }[];
}

/**
 * Loads the API's proto files (PROTO_FILES under PROTO_DIR) into a
 * protobufjs Root with their options, which proto-loader's descriptors drop.
 */
export function loadProtoRoot(protoDir: string = PROTO_DIR, files: readonly string[] = PROTO_FILES): protobuf.Root {
  registerDescriptorProto();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('/')) return target;
    const local = resolve(protoDir, target);
    // Not ours (google/protobuf/*.proto): protobufjs serves its bundled copy by this name.
    return existsSync(local) ? local : target;
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

/**
 * Finds the routing key of every method of every service in `root`.
 *
 * @throws Error when a request marks more than one routing key, or marks a
 *   field that is not a singular string: a mistake in the API that must fail
 *   at start-up, not on the first request.
 */
export function buildRoutingTable(root: protobuf.Root): RoutingTable {
  const routes = new Map<string, MethodRoute>();
  const unroutable: { path: string; reason: string }[] = [];
  for (const service of allServices(root)) {
    for (const method of service.methodsArray) {
      method.resolve();
      const path = `/${service.fullName.slice(1)}/${method.name}`;
      const type = method.resolvedRequestType;
      if (!type) throw new Error(`${path}: request type ${method.requestType} is not resolved`);
      const spec = keySpec(type);
      if (!spec) {
        unroutable.push({ path, reason: `${type.fullName.slice(1)} marks no field (shardwrite.v1.routing_key)` });
        continue;
      }
      routes.set(path, {
        path,
        requestType: type.fullName.slice(1),
        requestStream: method.requestStream === true,
        responseStream: method.responseStream === true,
        keyField: spec.description,
        extract: spec.extract,
      });
    }
  }
  return { routes, unroutable };
}

interface KeySpec {
  readonly description: string;
  extract(message: Uint8Array): string;
}

function keySpec(type: protobuf.Type): KeySpec | undefined {
  const direct = type.fieldsArray.filter(isRoutingKey);
  const nested: { member: protobuf.Field; key: protobuf.Field }[] = [];
  for (const oneof of type.oneofsArray) {
    for (const member of oneof.fieldsArray) {
      member.resolve();
      if (!(member.resolvedType instanceof protobuf.Type)) continue;
      const inner = member.resolvedType.fieldsArray.filter(isRoutingKey);
      if (inner.length > 1) throw new Error(`${member.resolvedType.fullName.slice(1)} marks more than one routing key`);
      if (inner[0]) nested.push({ member, key: inner[0] });
    }
  }
  const name = type.fullName.slice(1);
  if (direct.length + (nested.length > 0 ? 1 : 0) > 1) throw new Error(`${name} marks more than one routing key`);
  for (const f of [...direct, ...nested.map((n) => n.key)]) {
    if (f.type !== 'string' || f.repeated || f.map) throw new Error(`${f.fullName.slice(1)}: a routing key must be a singular string`);
  }
  const field = direct[0];
  if (field) return { description: `${field.name} (#${field.id})`, extract: (m) => extractDirect(m, field.id) };
  if (nested.length === 0) return undefined;
  const inner = new Map(nested.map((n) => [n.member.id, n.key.id]));
  return {
    description: nested.map((n) => `${n.member.name}.${n.key.name} (#${n.member.id}.${n.key.id})`).join(' | '),
    extract: (m) => extractThroughOneof(m, inner),
  };
}

function isRoutingKey(field: protobuf.Field): boolean {
  const options = field.options;
  if (!options) return false;
  for (const [name, value] of Object.entries(options)) {
    if (value !== true || !name.startsWith('(') || !name.endsWith(')')) continue;
    // The option is named as written in the .proto (`(routing_key)` inside package
    // shardwrite.v1, `(shardwrite.v1.routing_key)` elsewhere): resolve it from the field's scope.
    const written = name.slice(1, -1);
    const found = field.parent?.lookup(written);
    if (found instanceof protobuf.Field && found.fullName === ROUTING_KEY_OPTION) return true;
  }
  return false;
}

function allServices(ns: protobuf.NamespaceBase): protobuf.Service[] {
  const out: protobuf.Service[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Service) out.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) out.push(...allServices(child));
  }
  return out;
}

let descriptorRegistered = false;

/** Makes `import "google/protobuf/descriptor.proto"` (options.proto extends it) resolvable. */
function registerDescriptorProto(): void {
  if (descriptorRegistered) return;
  const require = createRequire(import.meta.url);
  const json = require('protobufjs/google/protobuf/descriptor.json') as { nested: { google: { nested: { protobuf: { nested: protobuf.INamespace['nested'] } } } } };
  protobuf.common('descriptor', json.nested.google.nested.protobuf.nested as Record<string, protobuf.INamespace>);
  descriptorRegistered = true;
}

// ---------------------------------------------------------------------------
// The protobuf wire format, read just far enough to find one field.
// https://protobuf.dev/programming-guides/encoding/

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;
const MAX_FIELD_NUMBER = 2 ** 29 - 1;
/** Groups nested deeper than this are refused rather than recursed into. */
const MAX_GROUP_DEPTH = 32;

/** A read position in a message; one per extraction. */
interface Cursor {
  pos: number;
  readonly end: number;
}

function malformed(description: string): ValidationError {
  return new ValidationError([{ field: 'request', description: `malformed protobuf message: ${description}` }]);
}

/** An unsigned varint as a safe integer (tags and lengths; larger values are malformed here). */
function readVarint(buf: Uint8Array, c: Cursor): number {
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
function readTag(buf: Uint8Array, c: Cursor): number {
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

function skip(buf: Uint8Array, c: Cursor, field: number, wireType: number, depth: number): void {
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
  const c: Cursor = { pos: start, end };
  let key = '';
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

/**
 * The key inside whichever oneof member a message sets (`members` maps a
 * member's field number to its key's field number). As in decoding, the last
 * member present wins, and repeated occurrences of the same member merge.
 */
export function extractThroughOneof(buf: Uint8Array, members: ReadonlyMap<number, number>): string {
  const c: Cursor = { pos: 0, end: buf.length };
  let key = '';
  let lastMember = 0;
  while (c.pos < c.end) {
    const tag = readTag(buf, c);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    const keyField = members.get(field);
    if (keyField === undefined) {
      skip(buf, c, field, wireType, 0);
      continue;
    }
    if (wireType !== LEN) throw malformed(`field ${field} has wire type ${wireType}, expected a message`);
    const from = readLength(buf, c);
    const inner = extractInner(buf, keyField, from, c.pos);
    if (field !== lastMember) key = inner ?? '';
    else if (inner !== undefined) key = inner;
    lastMember = field;
  }
  return key;
}

/** Like `extractDirect` over a sub-message, but tells "absent" (undefined) from "empty". */
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

/**
 * Generators of malformed and hostile gRPC request bytes (fast-check), and
 * the oracle that says which status each one deserves.
 *
 * The bytes are built with a tiny protobuf wire writer of our own (not the
 * protobufjs encoder), so a case can hold what no encoder would write: wrong
 * wire types, unknown and huge field numbers, repeated singular fields,
 * 10-byte varints in int32 fields, truncated lengths, groups. Field numbers
 * and types come from the API's own proto files, so every field of every
 * request message is covered without listing them here.
 *
 * The oracle decodes each case with exactly the deserializers the services
 * use (proto-loader with the runtime's loader options) and validates it with
 * the domain's own `toCommand`, so it knows whether a case is undecodable,
 * invalid, or a valid command that may write.
 */
import fc from 'fast-check';
import type protobuf from 'protobufjs';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import type { CommandSpec } from '../../src/domain/module.js';
import { ValidationError } from '../../src/errors.js';
import { checkId } from '../../src/domain/validation.js';
import { packedMethods, typeNameOf } from '../../src/grpc/packed.js';
import type { FieldViolation } from '../../src/errors.js';

// ---------------------------------------------------------------------------
// A protobuf wire writer that can write anything.

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;

/** An unsigned varint of any size (a negative bigint is written as its 64-bit two's complement, 10 bytes). */
export function varint(value: bigint | number): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

export function tag(field: number, wireType: number): Uint8Array {
  return varint(BigInt(field) * 8n + BigInt(wireType));
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function lenField(field: number, payload: Uint8Array): Uint8Array {
  return concat([tag(field, LEN), varint(payload.length), payload]);
}

export function stringField(field: number, text: string): Uint8Array {
  return lenField(field, new TextEncoder().encode(text));
}

export function varintField(field: number, value: bigint | number): Uint8Array {
  return concat([tag(field, VARINT), varint(value)]);
}

function fixed(bytes: number, value: bigint): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Hostile values.

const SQL = ["'; DROP TABLE events; --", "' OR '1'='1", '1); DELETE FROM streams; --', "$1'::jsonb", "E'\\\\x00'", 'SELECT pg_sleep(10)', "o1' UNION SELECT * FROM shard_fence --"];
const JSON_FRAGMENTS = ['{"a":1}', '"}', '{"__proto__":{"polluted":1}}', '[', ']', 'null', '{"constructor":{"prototype":{"x":1}}}', '\\u0000', '{"$ref":"#"}'];
const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf'];
const UNICODE = ['ü', 'Ω≈ç√', '😀', '👩‍👩‍👧‍👦', '\u202eevil', '\ufeffbom', 'e\u0301', '\u200b', 'ｆｕｌｌ', '𝔘𝔫𝔦', '\u{10ffff}', '\ud800', '\udfff'];
const CONTROL = ['\u0000', 'a\u0000b', '\u0001', 'line\nbreak', 'tab\there', '\r\n', '\u007f', '\u0085', '\u001b[31m'];

/** The order ids valid commands use, so they meet each other (duplicates, existing orders). */
export const FUZZ_ORDER_IDS = Array.from({ length: 24 }, (_, i) => `fz-${i}`);
const COMMAND_IDS = Array.from({ length: 40 }, (_, i) => `fz-cmd-${i}`);

/** Any string a hostile caller might send in any field. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('', ' ', '   x   ', 'a'.repeat(129), 'x'.repeat(1000)) },
  // A 100 kB value: rare, so the run stays fast, but every field gets some.
  { weight: 2, arbitrary: fc.constant('a'.repeat(100_000)) },
  { weight: 10, arbitrary: fc.constantFrom(...SQL) },
  { weight: 10, arbitrary: fc.constantFrom(...JSON_FRAGMENTS) },
  { weight: 5, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 10, arbitrary: fc.constantFrom(...UNICODE) },
  { weight: 10, arbitrary: fc.constantFrom(...CONTROL) },
  { weight: 15, arbitrary: fc.constantFrom(...FUZZ_ORDER_IDS, ...COMMAND_IDS, 'DE', 'EUR', 'a@b.co', 'order-header', 'order-lines', 'order-payment') },
  { weight: 10, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 10, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 5, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  {
    weight: 5,
    arbitrary: fc.tuple(fc.constantFrom(...FUZZ_ORDER_IDS), fc.constantFrom(...SQL, ...CONTROL, ...UNICODE, ...JSON_FRAGMENTS)).map(([a, b]) => a + b),
  },
);

const INT64_EDGES = [0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 10n ** 12n, 10n ** 12n + 1n, 2n ** 64n - 1n];
const INT32_EDGES = [0n, -1n, 1n, 10_000n, 10_001n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n, 2n ** 40n, -(2n ** 63n)];

export const hostileInt64: fc.Arbitrary<bigint> = fc.oneof(fc.constantFrom(...INT64_EDGES), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -5n, max: 200n }));
export const hostileInt32: fc.Arbitrary<bigint> = fc.oneof(fc.constantFrom(...INT32_EDGES), fc.bigInt({ min: -(2n ** 31n), max: 2n ** 31n - 1n }), fc.bigInt({ min: -3n, max: 20n }));

// ---------------------------------------------------------------------------
// Structured generation over the API's message types.

const MAX_DEPTH = 3;

/** One field of a message: a well-typed hostile value, a wrong wire type, or an unknown field. */
function fieldArb(type: protobuf.Type, depth: number): fc.Arbitrary<Uint8Array> {
  const fields = type.fieldsArray;
  const known = fields.length === 0 ? fc.constant(new Uint8Array()) : fc.constantFrom(...fields).chain((f) => typedValue(f, depth));
  const wrong = fields.length === 0 ? fc.constant(new Uint8Array()) : fc.constantFrom(...fields).chain((f) => anyWireValue(f.id, depth));
  const unknown = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(15, 16, 99, 19_000, 50_001, 2 ** 29 - 1)).chain((n) => anyWireValue(n, depth));
  return fc.oneof({ weight: 10, arbitrary: known }, { weight: 2, arbitrary: wrong }, { weight: 1, arbitrary: unknown });
}

/** A value of the field's declared type (hostile, but of the right wire type). */
function typedValue(f: protobuf.Field, depth: number): fc.Arbitrary<Uint8Array> {
  f.resolve();
  if (f.resolvedType && 'fieldsArray' in f.resolvedType) {
    if (depth >= MAX_DEPTH) return fc.constant(lenField(f.id, new Uint8Array()));
    return messageBytes(f.resolvedType, depth + 1).map((b) => lenField(f.id, b));
  }
  if (f.map) {
    return fc.tuple(hostileString, hostileString).map(([k, v]) => lenField(f.id, concat([stringField(1, k), stringField(2, v)])));
  }
  switch (f.type) {
    case 'string':
    case 'bytes':
      return hostileString.map((s) => stringField(f.id, s));
    case 'int64':
    case 'sint64':
    case 'uint64':
      return hostileInt64.map((v) => varintField(f.id, v));
    case 'int32':
    case 'uint32':
    case 'sint32':
      return hostileInt32.map((v) => varintField(f.id, v));
    case 'bool':
      return fc.constantFrom(0n, 1n, 2n, 2n ** 63n).map((v) => varintField(f.id, v));
    default:
      return anyWireValue(f.id, depth);
  }
}

/** Field `n` with any wire type and a payload of that shape (possibly a group). */
function anyWireValue(n: number, depth: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    hostileInt64.map((v) => concat([tag(n, VARINT), varint(v)])),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => concat([tag(n, I64), fixed(8, v)])),
    fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }).map((v) => concat([tag(n, I32), fixed(4, v)])),
    fc.uint8Array({ maxLength: 40 }).map((b) => lenField(n, b)),
    hostileString.map((s) => stringField(n, s)),
    depth >= MAX_DEPTH ? fc.constant(concat([tag(n, SGROUP), tag(n, EGROUP)])) : fc.uint8Array({ maxLength: 10 }).map((b) => concat([tag(n, SGROUP), b, tag(n, EGROUP)])),
  );
}

/** A message of `type`: any subset of its fields (missing ones included), in any order, some repeated. */
export function messageBytes(type: protobuf.Type, depth = 0): fc.Arbitrary<Uint8Array> {
  return fc.array(fieldArb(type, depth), { maxLength: depth === 0 ? 10 : 5 }).map(concat);
}

/** Raw byte-level damage to a message: truncation, flipped bytes, garbage appended, a bad length. */
export function damaged(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.tuple(base, fc.nat()).map(([b, n]) => b.slice(0, b.length === 0 ? 0 : n % b.length)),
    fc.tuple(base, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, n, x]) => {
      const c = Uint8Array.from(b);
      if (c.length > 0) c[n % c.length]! ^= x;
      return c;
    }),
    fc.tuple(base, fc.uint8Array({ minLength: 1, maxLength: 20 })).map(([b, g]) => concat([b, g])),
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.bigInt({ min: 1n, max: 2n ** 35n })).map(([n, len]) => concat([tag(n, LEN), varint(len), Uint8Array.of(1, 2, 3)])),
    fc.constant(Uint8Array.of(0x08)),
    fc.constant(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)),
    fc.constant(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)),
    fc.constant(Uint8Array.of(0x00)),
    fc.constant(Uint8Array.of(0x0f)),
  );
}

// ---------------------------------------------------------------------------
// Valid commands (they may write; the test tracks what they wrote).

const ADDRESSES = [
  { name: 'Ada Lovelace', line1: '12 St James Sq', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB' },
  { name: "O'Brien; DROP TABLE", line1: '{"x": "y"}', city: 'Zürich 😀', postal_code: '8001', country: 'CH' },
];

function addressBytes(a: (typeof ADDRESSES)[number]): Uint8Array {
  return concat([stringField(1, a.name), stringField(2, a.line1), stringField(3, a.city), stringField(4, a.postal_code), stringField(5, a.country)]);
}

/** A well-formed, usually valid request for each OrderService method, on the shared fuzz orders. */
export function validOrderRequest(method: string): fc.Arbitrary<Uint8Array> {
  const common = fc.tuple(
    fc.constantFrom(...FUZZ_ORDER_IDS),
    fc.option(fc.constantFrom(...COMMAND_IDS), { nil: undefined }),
    fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 6n }) }),
  );
  const head = ([order, command, expected]: [string, string | undefined, bigint | undefined]) =>
    concat([stringField(1, order), command === undefined ? new Uint8Array() : stringField(2, command), expected === undefined ? new Uint8Array() : varintField(3, expected)]);
  const line = fc.constantFrom('l1', 'l2', 'l3', 'line.4', 'l:5');
  const body: Record<string, fc.Arbitrary<Uint8Array>> = {
    PlaceOrder: fc.constantFrom(...ADDRESSES).map((a) => concat([stringField(4, 'cust-1'), stringField(5, 'ada@example.com'), lenField(6, addressBytes(a))])),
    UpdateShippingAddress: fc.constantFrom(...ADDRESSES).map((a) => lenField(4, addressBytes(a))),
    ShipOrder: fc.constant(concat([stringField(4, 'DHL'), stringField(5, 'TRK-1')])),
    CancelOrder: hostileString.filter((s) => s.length < 200).map((r) => stringField(4, r || 'changed mind')),
    AddOrderLine: fc
      .tuple(line, fc.integer({ min: 1, max: 10_000 }), fc.bigInt({ min: 0n, max: 100_000n }))
      .map(([l, q, p]) => concat([stringField(4, l), stringField(5, 'SKU-1'), varintField(6, q), varintField(7, p)])),
    RemoveOrderLine: line.map((l) => stringField(4, l)),
    // 1..3 lines from the same few ids: a repeated id within the command is INVALID_ARGUMENT, one the order has is BUSINESS_RULE.
    AddOrderLines: fc
      .array(fc.tuple(line, fc.integer({ min: 1, max: 10_000 }), fc.bigInt({ min: 0n, max: 100_000n })), { minLength: 1, maxLength: 3 })
      .map((lines) => concat(lines.map(([l, q, p]) => lenField(4, concat([stringField(1, l), stringField(2, 'SKU-1'), varintField(3, q), varintField(4, p)]))))),
    AuthorizePayment: fc.bigInt({ min: 1n, max: 10n ** 6n }).map((a) => concat([varintField(4, a), stringField(5, 'EUR')])),
    CapturePayment: fc.bigInt({ min: 1n, max: 10n ** 6n }).map((a) => varintField(4, a)),
  };
  const b = body[method];
  if (!b) throw new Error(`no valid request generator for ${method}`);
  return fc.tuple(common, b).map(([c, rest]) => concat([head(c), rest]));
}

/** SKUs the fuzzer's inventory commands use (their streams are `inventory-<sku>`). */
export const FUZZ_SKUS = Array.from({ length: 12 }, (_, i) => `fz-sku-${i}`);

/** A well-formed, usually valid request for each InventoryService method, on the shared fuzz SKUs. */
export function validInventoryRequest(method: string): fc.Arbitrary<Uint8Array> {
  const common = fc.tuple(
    fc.constantFrom(...FUZZ_SKUS),
    // ReceiveStock requires a command id: mostly set, sometimes not (INVALID_ARGUMENT).
    fc.option(fc.constantFrom(...COMMAND_IDS), { nil: undefined, freq: 5 }),
    fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 6n }) }),
  );
  const head = ([sku, command, expected]: [string, string | undefined, bigint | undefined]) =>
    concat([stringField(1, sku), command === undefined ? new Uint8Array() : stringField(2, command), expected === undefined ? new Uint8Array() : varintField(3, expected)]);
  const order = fc.constantFrom(...FUZZ_ORDER_IDS.slice(0, 6));
  const body: Record<string, fc.Arbitrary<Uint8Array>> = {
    ReceiveStock: fc.integer({ min: 1, max: 50 }).map((q) => varintField(4, BigInt(q))),
    ReserveStock: fc.tuple(order, fc.integer({ min: 1, max: 30 })).map(([o, q]) => concat([stringField(4, o), varintField(5, BigInt(q))])),
    ReleaseReservation: order.map((o) => stringField(4, o)),
  };
  const b = body[method];
  if (!b) throw new Error(`no valid request generator for ${method}`);
  return fc.tuple(common, b).map(([c, rest]) => concat([head(c), rest]));
}

/** A valid ReadStream request on a fuzz order. */
export const validReadStream: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('order-header', 'order-lines', 'order-payment', 'inventory'), fc.constantFrom(...FUZZ_ORDER_IDS, ...FUZZ_SKUS), fc.bigInt({ min: 0n, max: 5n }))
  .map(([t, id, from]) => concat([stringField(1, t), stringField(2, id), varintField(3, from)]));

/** Every kind of request for one method: hostile structure, valid commands, damage, random bytes. */
export function requestBytes(type: protobuf.Type, valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<{ kind: string; bytes: Uint8Array }> {
  const structured = messageBytes(type);
  return fc.oneof(
    { weight: 8, arbitrary: structured.map((bytes) => ({ kind: 'structured', bytes })) },
    { weight: 4, arbitrary: valid.map((bytes) => ({ kind: 'valid', bytes })) },
    { weight: 2, arbitrary: damaged(fc.oneof(structured, valid)).map((bytes) => ({ kind: 'damaged', bytes })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'random', bytes })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'empty', bytes: new Uint8Array() }) },
  );
}

// ---------------------------------------------------------------------------
// The oracle.

/** What a request deserves, judged with the services' own decoding and validation. */
export interface Verdict {
  /** The bytes do not decode as the request message: INTERNAL is acceptable. */
  readonly undecodable: boolean;
  /** Larger than the receive limit: RESOURCE_EXHAUSTED. */
  readonly oversized: boolean;
  /** Decodes but breaks a field rule: INVALID_ARGUMENT. */
  readonly invalid: boolean;
  /** The router's strict key scan refuses it: INVALID_ARGUMENT is acceptable. */
  readonly routerRefuses: boolean;
  /**
   * The router's key (the last well-typed key field) differs from the key protobufjs decodes: the
   * message has fields with unexpected wire types, which protobufjs misreads instead of skipping.
   * The router routes by its key and the shard refuses the aggregate it then sees as someone
   * else's: WRONG_SHARD is a deliberate answer (nothing is written).
   */
  readonly keyMismatch?: boolean;
  /** The key the router's scan reads, when a router is in front and its scan accepts the bytes. */
  readonly routerKey?: string;
  /** A valid command that sets expected_version (ABORTED is acceptable). */
  readonly expectsVersion: boolean;
  /** The stream a valid command writes. */
  readonly streamId?: string;
  /** The decoded request, when it decodes. */
  readonly decoded?: Record<string, unknown>;
}

/** What one decoded command deserves: invalid, or valid with the stream (and aggregate id) it writes. */
export interface CommandVerdict {
  readonly invalid: boolean;
  readonly expectsVersion: boolean;
  readonly streamId?: string;
  readonly aggregateId?: string;
}

export interface Oracle {
  verdict(path: string, bytes: Uint8Array): Verdict;
  /** Validation of one command of a stream (a decoded StreamedCommand's oneof member). */
  commandVerdict(method: string, request: unknown): CommandVerdict;
  /**
   * Validation of a packed command (StreamedCommand's `packed` member, as
   * decoded): invalid when its type URL names no registered command's request
   * or its value does not decode as that request.
   */
  packedVerdict(packed: { type_url?: unknown; value?: unknown } | null | undefined): CommandVerdict;
}

/**
 * @param definition the services' package definition (`loadPackageDefinition()`)
 * @param specs command specs by `service/method` (`commandSpecs(modules)`)
 * @param aggregateTypes the registered aggregate types (for ReadStream)
 * @param routerExtract the router's routing-key scan by path, when a router is in front
 */
export function createOracle(
  definition: PackageDefinition,
  specs: ReadonlyMap<string, CommandSpec>,
  aggregateTypes: ReadonlySet<string>,
  maxMessageBytes: number,
  routerExtract?: (path: string, bytes: Uint8Array) => string | undefined,
): Oracle {
  const methods = new Map<string, MethodDefinition<object, object>>();
  for (const entry of Object.values(definition)) {
    if (typeof entry !== 'object' || entry === null || 'format' in entry) continue;
    for (const m of Object.values(entry)) methods.set(m.path, m);
  }
  // Every registered command by the full name of its request message, as the shard unpacks a packed one.
  const byRequestType = new Map<string, { spec: CommandSpec; decode: (b: Buffer) => unknown }>();
  for (const service of new Set([...specs.keys()].map((key) => key.split('/')[0]!))) {
    for (const m of packedMethods(definition, service)) {
      const spec = specs.get(m.rpc);
      if (spec) byRequestType.set(m.requestType, { spec, decode: m.deserialize });
    }
  }
  const validate = (spec: CommandSpec, request: unknown): CommandVerdict => {
    try {
      const routed = spec.toCommand(request);
      return { invalid: false, expectsVersion: routed.expectedVersion !== undefined, streamId: `${routed.aggregateType}-${routed.aggregateId}`, aggregateId: routed.aggregateId };
    } catch (err) {
      if (err instanceof ValidationError) return { invalid: true, expectsVersion: false };
      // toCommand must only ever throw ValidationError: anything else would be INTERNAL on decodable input.
      throw new Error(`toCommand threw ${String(err)} on a decoded request`);
    }
  };
  return {
    verdict(path, bytes) {
      const m = methods.get(path);
      if (!m) throw new Error(`unknown method ${path}`);
      const oversized = bytes.length > maxMessageBytes;
      let routerRefuses = false;
      let routerKey: string | undefined;
      if (routerExtract) {
        try {
          routerKey = routerExtract(path, bytes);
        } catch {
          routerRefuses = true;
        }
      }
      let decoded: Record<string, unknown>;
      try {
        decoded = m.requestDeserialize(Buffer.from(bytes)) as Record<string, unknown>;
      } catch {
        return { undecodable: true, oversized, invalid: false, routerRefuses, expectsVersion: false };
      }
      const spec = specs.get(path.slice(1));
      if (spec) {
        const v = validate(spec, decoded);
        const keyMismatch = routerKey !== undefined && v.aggregateId !== undefined && v.aggregateId !== routerKey;
        return { undecodable: false, oversized, routerRefuses, keyMismatch, decoded, ...v };
      }
      if (path.endsWith('/ReadStream')) {
        const out: FieldViolation[] = [];
        checkId(out, 'aggregate_id', decoded.aggregateId);
        const from = Number(decoded.fromVersion);
        const invalid = out.length > 0 || !aggregateTypes.has(String(decoded.aggregateType)) || !Number.isSafeInteger(from) || from < 0;
        return { undecodable: false, oversized, invalid, routerRefuses, expectsVersion: false, decoded };
      }
      // CommandStreamService frames are judged per command by the test.
      return { undecodable: false, oversized, invalid: false, routerRefuses, expectsVersion: false, decoded, ...(routerKey !== undefined ? { routerKey } : {}) };
    },
    packedVerdict(packed) {
      const found = byRequestType.get(typeNameOf(typeof packed?.type_url === 'string' ? packed.type_url : ''));
      if (!found) return { invalid: true, expectsVersion: false };
      let request: unknown;
      try {
        request = found.decode(Buffer.isBuffer(packed?.value) ? packed.value : Buffer.alloc(0));
      } catch {
        return { invalid: true, expectsVersion: false };
      }
      return validate(found.spec, request);
    },
    commandVerdict(method, request) {
      // The stream's oneof carries commands of every module (orders, process managers).
      const spec = [...specs].find(([key]) => key.endsWith(`/${method}`))?.[1];
      if (!spec) throw new Error(`no spec for ${method}`);
      return validate(spec, request);
    },
  };
}

/** A status code as its name. */
export function codeName(code: number): string {
  return grpc.status[code] ?? `CODE_${code}`;
}

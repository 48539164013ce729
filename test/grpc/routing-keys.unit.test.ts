import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { ValidationError } from '../../src/errors.js';
import { buildRoutingTable, extractDirect, loadProtoRoot, type MethodRoute } from '../../src/grpc/routing-keys.js';
import { linkedCommands } from '../../router/shard-links.js';
import { expectThrow } from '../support/expect-error.js';

const root = loadProtoRoot();
const table = buildRoutingTable(root);

function route(path: string): MethodRoute {
  const r = table.routes.get(path);
  if (!r) throw new Error(`no route for ${path}`);
  return r;
}

function encode(typeName: string, value: object): Buffer {
  const type = root.lookupType(typeName);
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

/** A sample request for every routed method, keyed by path, with the id it must be routed by. */
function sampleRequests(): { path: string; bytes: Buffer; key: string }[] {
  const out: { path: string; bytes: Buffer; key: string }[] = [];
  for (const r of table.routes.values()) {
    const type = root.lookupType(r.requestType);
    // Fill every scalar field, so the key is found among real neighbours.
    const value: Record<string, unknown> = {};
    let key = `key-for-${r.path.split('/')[2]}`;
    const keyName = r.keyField.split(' ')[0];
    for (const f of type.fieldsArray) {
      if (f.partOf && f.partOf.fieldsArray.length > 1 && !f.name.startsWith('_')) continue;
      if (f.type === 'string') value[f.name] = f.name === keyName ? key : `v-${f.name}`;
      else if (f.type === 'int64' || f.type === 'int32' || f.type === 'uint32') value[f.name] = f.repeated ? [7, 8] : 7;
    }
    if (r.keyField.includes('.')) {
      // A oneof envelope: set its first member, with the key inside.
      const member = type.oneofsArray.flatMap((o) => o.fieldsArray).find((f) => f.resolvedType instanceof protobuf.Type)!;
      key = `nested-${key}`;
      value[member.name] = { order_id: key, command_id: 'c-1' };
    }
    out.push({ path: r.path, bytes: encode(r.requestType, value), key });
  }
  return out;
}

describe('routing keys found from the proto definitions', () => {
  it('finds the marked id field of every OrderService and EventStoreService method', () => {
    const orderMethods = root.lookupService('shardwrite.v1.OrderService').methodsArray.map((m) => m.name);
    expect(orderMethods.length).toBeGreaterThanOrEqual(8);
    for (const m of orderMethods) expect(route(`/shardwrite.v1.OrderService/${m}`).keyField).toBe('order_id (#1)');
    expect(route('/shardwrite.v1.EventStoreService/ReadStream').keyField).toBe('aggregate_id (#2)');
    // Only the services the router serves itself (merged across shards, or its own ring) have no routing key.
    expect(table.unroutable.map((u) => u.path).sort()).toEqual([
      '/shardwrite.v1.ConsumerGroupService/Consume',
      '/shardwrite.v1.RingService/GetRing',
      '/shardwrite.v1.RingService/WatchRing',
      '/shardwrite.v1.SubscriptionService/Subscribe',
    ]);
  });

  it('finds a key one level down, inside the message members of a oneof', () => {
    const parsed = protobuf.parse(
      `
      syntax = "proto3";
      package demo;
      import "shardwrite/v1/options.proto";
      message Open { string session = 1; string account_id = 2 [(shardwrite.v1.routing_key) = true]; }
      message Close { string account_id = 3 [(shardwrite.v1.routing_key) = true]; }
      message Envelope { string request_id = 1; oneof body { Open open = 2; Close close = 3; int32 ping = 4; } }
      message NoKey { string id = 1; }
      service Sessions { rpc Talk(stream Envelope) returns (stream Envelope); rpc Plain(NoKey) returns (NoKey); }
    `,
      { keepCase: true },
    );
    const demo = loadProtoRoot(undefined, ['shardwrite/v1/options.proto']);
    demo.add(parsed.root.lookup('demo')!);
    demo.resolveAll();
    const t = buildRoutingTable(demo);
    const talk = t.routes.get('/demo.Sessions/Talk')!;
    expect(talk.keyField).toBe('open.account_id (#2.2) | close.account_id (#3.3)');
    expect(t.unroutable.map((u) => u.path)).toEqual(['/demo.Sessions/Plain']);

    const Envelope = demo.lookupType('demo.Envelope');
    const enc = (v: object) => Buffer.from(Envelope.encode(Envelope.fromObject(v)).finish());
    expect(talk.extract(enc({ request_id: 'r1', open: { session: 's', account_id: 'acc-1' } }))).toBe('acc-1');
    expect(talk.extract(enc({ request_id: 'r2', close: { account_id: 'acc-2' } }))).toBe('acc-2');
    expect(talk.extract(enc({ request_id: 'r3', ping: 5 }))).toBe('');
    // The last member on the wire wins, as when decoding; a repeat of the same member merges.
    const open = enc({ open: { account_id: 'first' } });
    const close = enc({ close: { account_id: 'second' } });
    const openWithoutKey = enc({ open: { session: 'only' } });
    expect(talk.extract(Buffer.concat([open, close]))).toBe('second');
    expect(talk.extract(Buffer.concat([open, openWithoutKey]))).toBe('first');
    expect(talk.extract(Buffer.concat([close, openWithoutKey]))).toBe('');
  });

  it('finds a key inside a google.protobuf.Any member, at the key field of the message its type_url names', () => {
    const parsed = protobuf.parse(
      `
      syntax = "proto3";
      package demo;
      import "google/protobuf/any.proto";
      import "shardwrite/v1/options.proto";
      message Open { string session = 1; string account_id = 2 [(shardwrite.v1.routing_key) = true]; }
      message Move { string from = 1; string crate_id = 5 [(shardwrite.v1.routing_key) = true]; }
      message NoKey { string id = 1; }
      message Envelope { string request_id = 1; oneof body { Open open = 2; google.protobuf.Any packed = 7; } }
      service Sessions { rpc Talk(stream Envelope) returns (stream Envelope); }
    `,
      { keepCase: true },
    );
    const demo = loadProtoRoot(undefined, ['shardwrite/v1/options.proto', 'google/protobuf/any.proto']);
    demo.add(parsed.root.lookup('demo')!);
    demo.resolveAll();
    const talk = buildRoutingTable(demo).routes.get('/demo.Sessions/Talk')!;
    expect(talk.keyField).toBe("open.account_id (#2.2) | packed: the packed message's key (#7)");

    const type = (name: string) => demo.lookupType(name);
    const bytesOf = (name: string, v: object) => Buffer.from(type(name).encode(type(name).fromObject(v)).finish());
    const packed = (name: string, v: object, url = `type.googleapis.com/${name}`) => bytesOf('demo.Envelope', { request_id: 'r', packed: { type_url: url, value: bytesOf(name, v) } });
    expect(talk.extract(packed('demo.Move', { from: 'x', crate_id: 'crate-9' }))).toBe('crate-9');
    expect(talk.extract(packed('demo.Open', { account_id: 'acc-7' }))).toBe('acc-7');
    // Only what follows the type URL's last slash names the message, as protobuf's Any resolvers read it.
    expect(talk.extract(packed('demo.Move', { crate_id: 'c-1' }, 'example.com/any/demo.Move'))).toBe('c-1');
    expect(talk.extract(packed('demo.Move', { from: 'no key' }))).toBe('');
    // A message that marks no routing key, or one the proto does not know, cannot be routed.
    expectThrow(() => talk.extract(packed('demo.NoKey', { id: 'i' })), ValidationError);
    expectThrow(() => talk.extract(packed('demo.Move', { crate_id: 'c' }, 'type.googleapis.com/demo.Nothing')), /packed.type_url/);
    // The last member on the wire wins; a repeat of the packed member merges its type_url and value.
    const open = bytesOf('demo.Envelope', { open: { account_id: 'first' } });
    expect(talk.extract(Buffer.concat([open, packed('demo.Move', { crate_id: 'second' })]))).toBe('second');
    expect(talk.extract(Buffer.concat([packed('demo.Move', { crate_id: 'second' }), open]))).toBe('first');
    const urlOnly = bytesOf('demo.Envelope', { packed: { type_url: 'type.googleapis.com/demo.Open' } });
    const valueOnly = bytesOf('demo.Envelope', { packed: { value: bytesOf('demo.Open', { account_id: 'merged' }) } });
    expect(talk.extract(Buffer.concat([urlOnly, valueOnly]))).toBe('merged');
    // type_url or value with the wrong wire type is malformed, as the shard's decoder would find.
    const w = protobuf.Writer.create();
    w.uint32((7 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 0)
      .uint32(5)
      .ldelim();
    expectThrow(() => talk.extract(Buffer.from(w.finish())), ValidationError);
  });

  it('routes StreamedCommand packed requests by the key of every routed request message', () => {
    const stream = route('/shardwrite.v1.CommandStreamService/Execute');
    const request = encode('shardwrite.v1.PlaceOrderRequest', { order_id: 'o-packed', customer_id: 'c' });
    const frame = encode('shardwrite.v1.StreamedCommand', { request_id: '1', packed: { type_url: 'type.googleapis.com/shardwrite.v1.PlaceOrderRequest', value: request } });
    expect(stream.extract(frame)).toBe('o-packed');
  });

  it('sends every unary command RPC over the link as a StreamedCommand the router routes by the same key', () => {
    const linked = linkedCommands(root);
    const stream = route('/shardwrite.v1.CommandStreamService/Execute');
    const commands = [...table.routes.values()].filter((r) => !r.requestStream && !r.responseStream && r.responseType === linked.resultType);
    expect(commands.length).toBeGreaterThanOrEqual(14);
    for (const r of commands) {
      const wrap = linked.wrap(r.requestType);
      expect(wrap, `${r.path} would fall back to the unbatched path`).toBeDefined();
      const type = root.lookupType(r.requestType);
      const keyName = r.keyField.split(' ')[0]!;
      const bytes = encode(r.requestType, { [keyName]: `k-${type.name}`, command_id: 'c' });
      const frame = wrap!(bytes);
      expect(stream.extract(frame), r.path).toBe(`k-${type.name}`);
      // The frame decodes as a StreamedCommand carrying the request unchanged: in its own member, else packed.
      const decoded = root.lookupType('shardwrite.v1.StreamedCommand').decode(frame) as unknown as Record<string, unknown> & { command?: string };
      const carried = decoded[decoded.command!] as { type_url?: string; value?: Uint8Array };
      if (decoded.command === 'packed') {
        expect(carried.type_url).toBe(`type.googleapis.com/${r.requestType}`);
        expect(Buffer.from(carried.value!)).toEqual(bytes);
      } else {
        expect(Buffer.from(type.encode(carried as protobuf.Message).finish())).toEqual(bytes);
      }
    }
  });

  it('refuses at start-up a request that marks two routing keys, or a key that is not a string', () => {
    const make = (body: string) => {
      const demo = loadProtoRoot(undefined, ['shardwrite/v1/options.proto']);
      const parsed = protobuf.parse(`syntax = "proto3"; package bad; import "shardwrite/v1/options.proto"; ${body}`, { keepCase: true });
      demo.add(parsed.root.lookup('bad')!);
      demo.resolveAll();
      return () => buildRoutingTable(demo);
    };
    expectThrow(
      make(`message R { string a = 1 [(shardwrite.v1.routing_key) = true]; string b = 2 [(shardwrite.v1.routing_key) = true]; }
      service S { rpc M(R) returns (R); }`),
      /more than one routing key/,
    );
    expectThrow(make(`message R { int64 a = 1 [(shardwrite.v1.routing_key) = true]; } service S { rpc M(R) returns (R); }`), /must be a singular string/);
  });
});

describe('extracting the routing key from request bytes', () => {
  it('reads the key of a sample request of every routed method', () => {
    const samples = sampleRequests();
    expect(samples.length).toBe(table.routes.size);
    for (const s of samples) expect(route(s.path).extract(s.bytes), s.path).toBe(s.key);
  });

  it('finds the key when it is not the first field on the wire', () => {
    const w = protobuf.Writer.create();
    w.uint32((4 << 3) | 2).string('cust-9'); // customer_id
    w.uint32((3 << 3) | 0).int64(12); // expected_version
    w.uint32((6 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string('Ada')
      .ldelim(); // shipping_address.name
    w.uint32((1 << 3) | 2).string('o-late'); // order_id, last
    const bytes = Buffer.from(w.finish());
    expect(route('/shardwrite.v1.OrderService/PlaceOrder').extract(bytes)).toBe('o-late');
    expect(root.lookupType('shardwrite.v1.PlaceOrderRequest').decode(bytes).toJSON().order_id).toBe('o-late');
  });

  it('skips unknown fields of every wire type, including groups', () => {
    const w = protobuf.Writer.create();
    w.uint32((900 << 3) | 0).uint64('18446744073709551615'); // varint, 10 bytes
    w.uint32((901 << 3) | 1).fixed64(1); // 64-bit
    w.uint32((902 << 3) | 5).fixed32(1); // 32-bit
    w.uint32((903 << 3) | 2).bytes(Buffer.from([1, 2, 3])); // length-delimited
    w.uint32((1 << 3) | 2).string('o-after-unknowns');
    // After the key, so a reader that did not skip the group whole would take its field 1 instead.
    w.uint32((904 << 3) | 3); // start group …
    w.uint32((1 << 3) | 2).string('not-the-key'); // … whose field 1 is not the request's field 1
    w.uint32((904 << 3) | 4); // … end group
    w.uint32((905 << 3) | 2).bytes(Buffer.from([(1 << 3) | 2, 1, 0x78])); // a length-delimited field that looks like field 1 inside
    expect(extractDirect(Buffer.from(w.finish()), 1)).toBe('o-after-unknowns');
  });

  it('lets the last occurrence of the key win, as decoding does', () => {
    const a = encode('shardwrite.v1.CancelOrderRequest', { order_id: 'first', reason: 'r' });
    const b = encode('shardwrite.v1.CancelOrderRequest', { order_id: 'second' });
    expect(route('/shardwrite.v1.OrderService/CancelOrder').extract(Buffer.concat([a, b]))).toBe('second');
  });

  it('gives an empty key for a request without one, and reads UTF-8 keys', () => {
    const r = route('/shardwrite.v1.OrderService/ShipOrder');
    expect(r.extract(Buffer.alloc(0))).toBe('');
    expect(r.extract(encode('shardwrite.v1.ShipOrderRequest', { carrier: 'DHL' }))).toBe('');
    expect(r.extract(encode('shardwrite.v1.ShipOrderRequest', { order_id: 'ördér-✓' }))).toBe('ördér-✓');
  });

  it('reads a key from a view into a larger buffer', () => {
    const bytes = encode('shardwrite.v1.ReadStreamRequest', { aggregate_type: 'order-lines', aggregate_id: 'o-view' });
    const big = Buffer.concat([Buffer.from([0xff, 0xff]), bytes, Buffer.from([0xff])]);
    expect(route('/shardwrite.v1.EventStoreService/ReadStream').extract(big.subarray(2, 2 + bytes.length))).toBe('o-view');
  });

  it('refuses malformed bytes with a VALIDATION error', () => {
    const r = route('/shardwrite.v1.OrderService/PlaceOrder');
    const cases: [string, number[]][] = [
      ['truncated tag varint', [0x80]],
      ['truncated length', [(1 << 3) | 2]],
      ['length past the end', [(1 << 3) | 2, 5, 0x61]],
      ['truncated varint value', [(3 << 3) | 0, 0xff]],
      ['truncated fixed64', [(9 << 3) | 1, 1, 2, 3]],
      ['truncated fixed32', [(9 << 3) | 5, 1]],
      ['field number 0', [0x02, 0x00]],
      ['wire type 6', [(9 << 3) | 6]],
      ['wire type 7', [(9 << 3) | 7]],
      ['end group without start', [(9 << 3) | 4]],
      ['unterminated group', [(9 << 3) | 3, (1 << 3) | 0, 1]],
      ['mismatched end group', [(9 << 3) | 3, (8 << 3) | 4]],
      ['key with the wrong wire type', [(1 << 3) | 0, 1]],
      ['over-long varint', [(3 << 3) | 0, ...Array(11).fill(0xff), 1]],
    ];
    for (const [what, bytes] of cases) {
      let thrown: unknown;
      try {
        r.extract(Buffer.from(bytes));
      } catch (err) {
        thrown = err;
      }
      expect(thrown, what).toBeInstanceOf(ValidationError);
      expect((thrown as ValidationError).reason, what).toBe('VALIDATION');
    }
  });

  it('refuses groups nested beyond a sane depth instead of recursing without bound', () => {
    const open = Array.from({ length: 100 }, () => (9 << 3) | 3);
    const close = Array.from({ length: 100 }, () => (9 << 3) | 4);
    expectThrow(() => extractDirect(Buffer.from([...open, ...close]), 1), ValidationError);
  });
});

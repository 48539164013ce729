/**
 * Where each request carries its routing key, found from the proto
 * definitions, and how to read that key from the request bytes without
 * decoding the message.
 *
 * A request field marked `[(shardwrite.v1.routing_key) = true]` holds the
 * aggregate id the request is routed by. It may sit directly in the request,
 * or one level down inside the message members of a oneof (a stream's
 * "one of these commands" envelope), or inside a oneof member of type
 * `google.protobuf.Any` (StreamedCommand's `packed`): there the key is read
 * from the packed message's bytes, at the key field of the message its
 * `type_url` names. Nothing here knows any service or message by name: a new
 * service or aggregate type marks its id field and is routed.
 */
import protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PROTO_DIR, PROTO_FILES } from './proto.js';
import { extractDirect, extractThroughOneof, type PackedMember } from './wire-scan.js';

/** Full name of the field option that marks a routing key. */
export const ROUTING_KEY_OPTION = '.shardwrite.v1.routing_key';

/** How one method's requests are routed. */
export interface MethodRoute {
  /** The gRPC path, `/package.Service/Method`. */
  readonly path: string;
  readonly requestType: string;
  readonly responseType: string;
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
  extract: (message: Uint8Array) => string;
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
  const keys = routedMessages(root);
  for (const service of allServices(root)) {
    for (const method of service.methodsArray) {
      method.resolve();
      const path = `/${service.fullName.slice(1)}/${method.name}`;
      const type = method.resolvedRequestType;
      if (!type) throw new Error(`${path}: request type ${method.requestType} is not resolved`);
      const spec = keySpec(type, keys);
      if (!spec) {
        unroutable.push({ path, reason: `${type.fullName.slice(1)} marks no field (shardwrite.v1.routing_key)` });
        continue;
      }
      routes.set(path, {
        path,
        requestType: type.fullName.slice(1),
        responseType: method.resolvedResponseType?.fullName.slice(1) ?? method.responseType,
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
  extract: (message: Uint8Array) => string;
}

/** Full name of the message a oneof member packs any routed message in. */
const ANY = '.google.protobuf.Any';

/** The key field number of every message in `root` that marks one directly, by full name (no leading dot). */
function routedMessages(root: protobuf.Root): ReadonlyMap<string, number> {
  const keys = new Map<string, number>();
  for (const type of allTypes(root)) {
    const direct = type.fieldsArray.filter(isRoutingKey);
    if (direct.length === 1) keys.set(type.fullName.slice(1), direct[0]!.id);
  }
  return keys;
}

function keySpec(type: protobuf.Type, keys: ReadonlyMap<string, number>): KeySpec | undefined {
  const direct = type.fieldsArray.filter(isRoutingKey);
  const nested: { member: protobuf.Field; key: protobuf.Field }[] = [];
  let packed: PackedMember | undefined;
  for (const oneof of type.oneofsArray) {
    for (const member of oneof.fieldsArray) {
      member.resolve();
      if (!(member.resolvedType instanceof protobuf.Type)) continue;
      if (member.resolvedType.fullName === ANY) {
        if (packed) throw new Error(`${type.fullName.slice(1)} has more than one packed (google.protobuf.Any) member`);
        const any = member.resolvedType;
        packed = { name: member.name, member: member.id, typeUrlField: any.fields.type_url!.id, valueField: any.fields.value!.id, keyOf: (name) => keys.get(name) };
        continue;
      }
      const inner = member.resolvedType.fieldsArray.filter(isRoutingKey);
      if (inner.length > 1) throw new Error(`${member.resolvedType.fullName.slice(1)} marks more than one routing key`);
      if (inner[0]) nested.push({ member, key: inner[0] });
    }
  }
  const name = type.fullName.slice(1);
  const viaOneof = nested.length > 0 || packed !== undefined;
  if (direct.length + (viaOneof ? 1 : 0) > 1) throw new Error(`${name} marks more than one routing key`);
  for (const f of [...direct, ...nested.map((n) => n.key)]) {
    if (f.type !== 'string' || f.repeated || f.map) throw new Error(`${f.fullName.slice(1)}: a routing key must be a singular string`);
  }
  const field = direct[0];
  if (field) return { description: `${field.name} (#${field.id})`, extract: (m) => extractDirect(m, field.id) };
  if (!viaOneof) return undefined;
  const inner = new Map(nested.map((n) => [n.member.id, n.key.id]));
  const described = nested.map((n) => `${n.member.name}.${n.key.name} (#${n.member.id}.${n.key.id})`);
  if (packed) described.push(`${packed.name}: the packed message's key (#${packed.member})`);
  return {
    description: described.join(' | '),
    extract: (m) => extractThroughOneof(m, inner, packed),
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
  return allNested(ns, (o): o is protobuf.Service => o instanceof protobuf.Service);
}

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return allNested(ns, (o): o is protobuf.Type => o instanceof protobuf.Type);
}

function allNested<T extends protobuf.ReflectionObject>(ns: protobuf.NamespaceBase, wanted: (o: protobuf.ReflectionObject) => o is T): T[] {
  const out: T[] = [];
  for (const child of ns.nestedArray) {
    if (wanted(child)) out.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) out.push(...allNested(child, wanted));
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

export { extractDirect, extractThroughOneof };

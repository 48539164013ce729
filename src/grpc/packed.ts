/**
 * Commands packed in `google.protobuf.Any` (StreamedCommand's `packed`
 * member): how a request message's full name becomes a type URL and back,
 * and which request message each command RPC of a package definition takes.
 * The shard unpacks with it and the typed client packs with it; the router
 * reads the same type URL from the bytes (`wire-scan.ts`).
 */
import type { MessageTypeDefinition, MethodDefinition, PackageDefinition } from '@grpc/proto-loader';

/** What `google.protobuf.Any` puts before a message's full name. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The type URL of a message, e.g. `type.googleapis.com/shardwrite.v1.ReserveStockRequest`. */
export function typeUrlOf(fullName: string): string {
  return `${TYPE_URL_PREFIX}${fullName}`;
}

/**
 * The message full name a type URL names: what follows its last `/`, as
 * protobuf's own Any resolvers read it (any host part is ignored).
 */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** A command RPC's request message, by full name, with its codec. */
export interface PackedMethod {
  /** `shardwrite.v1.InventoryService/ReserveStock`. */
  readonly rpc: string;
  /** `shardwrite.v1.ReserveStockRequest`. */
  readonly requestType: string;
  readonly serialize: (request: object) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
}

/**
 * The unary RPCs of `service` in `definition`, each with the full name of its
 * request message (proto-loader keeps only the short name on a method).
 *
 * @throws Error when the service is not in the definition, or a request
 *   message cannot be told apart from another of the same short name.
 */
export function packedMethods(definition: PackageDefinition, service: string): PackedMethod[] {
  const methods = definition[service] as Record<string, MethodDefinition<object, object>> | undefined;
  if (!methods || 'format' in methods) throw new Error(`service ${service} is not in the loaded proto definitions`);
  return Object.entries(methods)
    .filter(([, m]) => !m.requestStream && !m.responseStream)
    .map(([name, m]) => ({
      rpc: `${service}/${name}`,
      requestType: fullNameOf(definition, m.requestType),
      serialize: m.requestSerialize,
      deserialize: m.requestDeserialize,
    }));
}

function fullNameOf(definition: PackageDefinition, type: MessageTypeDefinition<object, object>): string {
  const descriptor = JSON.stringify(type.type);
  const short = (type.type as { name: string }).name;
  const found = Object.entries(definition).filter(
    ([name, entry]) => (name === short || name.endsWith(`.${short}`)) && 'format' in entry && JSON.stringify((entry as MessageTypeDefinition<object, object>).type) === descriptor,
  );
  if (found.length !== 1) throw new Error(`request message ${short} is ${found.length === 0 ? 'not in' : 'ambiguous in'} the loaded proto definitions`);
  return found[0]![0];
}

/** StreamedCommand's `command` oneof, as proto-loader's objects name its members. */
export interface StreamedMembers {
  /** The member carrying each request message (full name → member, e.g. `placeOrder`). */
  readonly byRequestType: ReadonlyMap<string, string>;
  /** The member that packs any command in a `google.protobuf.Any` (`packed`); undefined when the proto has none. */
  readonly packed: string | undefined;
}

const STREAMED_COMMAND = 'shardwrite.v1.StreamedCommand';
const ANY = 'google.protobuf.Any';

/**
 * The members of StreamedCommand's `command` oneof in `definition`, from the
 * loaded proto: its message-typed fields (all of them are in the oneof).
 */
export function streamedMembers(definition: PackageDefinition): StreamedMembers {
  const streamed = definition[STREAMED_COMMAND] as MessageTypeDefinition<object, object> | undefined;
  // proto-loader's descriptor names fields as the loaded objects do, and types as written in the .proto.
  const fields = (streamed?.type as { field?: { name: string; typeName: string }[] } | undefined)?.field ?? [];
  const byRequestType = new Map<string, string>();
  let packed: string | undefined;
  for (const f of fields) {
    if (f.typeName === '') continue;
    const typeName = resolveTypeName(definition, STREAMED_COMMAND, f.typeName);
    if (typeName === ANY) packed = f.name;
    else if (typeName !== undefined) byRequestType.set(typeName, f.name);
  }
  return { byRequestType, packed };
}

/** A type name as written inside message `scope`, resolved as protobuf does: innermost enclosing package first. */
function resolveTypeName(definition: PackageDefinition, scope: string, written: string): string | undefined {
  if (written.startsWith('.')) return written.slice(1);
  const parts = scope.split('.');
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), written].join('.');
    if (candidate in definition) return candidate;
  }
  return undefined;
}

/**
 * Loads the API from `proto/`. The loader options live here only: the
 * runtime and `npm run gen` (the committed typed stubs in `src/generated/`)
 * use exactly these.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { ProtoGrpcType as OrdersGrpc } from '../generated/orders.js';
import type { ProtoGrpcType as EventsGrpc } from '../generated/events.js';
import type { ProtoGrpcType as StreamGrpc } from '../generated/command_stream.js';
import type { ProtoGrpcType as SubscriptionsGrpc } from '../generated/subscriptions.js';
import type { ProtoGrpcType as ProcessManagersGrpc } from '../generated/process_managers.js';
import type { ProtoGrpcType as FeedGrpc } from '../generated/shard_feed.js';
import type { ProtoGrpcType as DataSubjectsGrpc } from '../generated/data_subjects.js';
import type { ProtoGrpcType as RingGrpc } from '../generated/ring.js';

/**
 * The typed object tree of the core services. A command service added later
 * has its own typed stubs in `src/generated/<its proto file>.ts` (for the
 * typed client: `client.service<…ServiceDefinition>(name)`).
 */
export type ProtoGrpcType = OrdersGrpc & EventsGrpc & StreamGrpc & SubscriptionsGrpc & ProcessManagersGrpc & DataSubjectsGrpc & RingGrpc;

/** The `proto/` folder, found from this file both in `src/` (tsx) and in `dist/src/` (built). */
export const PROTO_DIR = findProtoDir(dirname(fileURLToPath(import.meta.url)));

const SERVICE_DECLARATION = /^\s*service\s+\w+\s*\{/m;

/** The folder of the public API's proto files, relative to PROTO_DIR. */
export const PUBLIC_PROTO_FOLDER = 'shardwrite/v1';

/**
 * The proto files that make up the public API, relative to PROTO_DIR: every
 * `.proto` in `PUBLIC_PROTO_FOLDER` that declares a service, in name order, so
 * a new command service is served, routed and given typed stubs by adding its
 * file there. (Files of messages or options only, such as `options.proto`,
 * are loaded through the imports of those.)
 */
export const PROTO_FILES: readonly string[] = readdirSync(resolve(PROTO_DIR, PUBLIC_PROTO_FOLDER))
  .filter((name) => name.endsWith('.proto') && SERVICE_DECLARATION.test(readFileSync(resolve(PROTO_DIR, PUBLIC_PROTO_FOLDER, name), 'utf8')))
  .sort()
  .map((name) => `${PUBLIC_PROTO_FOLDER}/${name}`);

/** The shard's feed, internal (a router follows each shard with it): served by shards only. */
export const FEED_PROTO = 'shardwrite/internal/v1/shard_feed.proto';

/** Every proto file with committed typed stubs. */
export const GENERATED_PROTO_FILES: readonly string[] = [...PROTO_FILES, FEED_PROTO];

/**
 * The router-to-shard link, internal: not in the public API, not served by
 * the router. Its frames are encoded by hand (`link-codec.ts`), so its
 * methods pass bytes through.
 */
export const LINK_PROTO = 'shardwrite/internal/v1/shard_link.proto';
export const LINK_SERVICE = 'shardwrite.internal.v1.ShardLink';

export interface LinkDefinition {
  /** `/shardwrite.internal.v1.ShardLink/Execute`. */
  readonly path: string;
  readonly service: grpc.ServiceDefinition;
}

export function linkDefinition(): LinkDefinition {
  const identity = (b: Buffer): Buffer => b;
  const path = `/${LINK_SERVICE}/Execute`;
  const execute = {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'execute',
  };
  return { path, service: { Execute: execute } };
}

/**
 * int64 as strings (never lose precision), enums as names, defaults filled
 * in (so a missing string is ''), virtual oneof fields (so proto3 `optional`
 * presence is visible).
 */
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

export function loadPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
}

/** The internal feed service's definition (`shardwrite.internal.v1.ShardFeed`). */
export function feedApi(): FeedGrpc {
  const definition = protoLoader.loadSync([FEED_PROTO], { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return grpc.loadPackageDefinition(definition) as unknown as FeedGrpc;
}

/** The typed gRPC object tree: `api().shardwrite.v1.OrderService`, … */
export function loadApi(definition = loadPackageDefinition()): ProtoGrpcType {
  return grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
}

function findProtoDir(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = resolve(dir, 'proto');
    if (existsSync(resolve(candidate, 'shardwrite/v1/command_stream.proto'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`proto/ not found above ${from}`);
  }
}

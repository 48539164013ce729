/**
 * What each RPC requires, deny by default: a method with no entry in the
 * table is refused (PERMISSION_DENIED), so a new RPC is closed until someone
 * decides who may call it.
 */
import type { DomainModule } from '../domain/module.js';

/**
 * - `public`: no credentials needed (health, reflection);
 * - `command`: an authenticated caller; the pipeline then checks the
 *   aggregate type's scope and the tenant of each command;
 * - `read`: the `read` scope (events are filtered or refused by tenant; the ring);
 * - `admin`: the `admin` scope (ring and rebalancing operations, erasing data subjects);
 * - `link`: the router-to-shard link, whose frames carry identities the router
 *   verified. Trusted as it stands: only mutual TLS keeps other callers off it.
 */
export type Permission = 'public' | 'command' | 'read' | 'admin' | 'link';

/** The fixed part of the table (commands come from the domain modules). */
export const FIXED_PERMISSIONS: Readonly<Record<string, Permission>> = {
  '/grpc.health.v1.Health/Check': 'public',
  '/grpc.health.v1.Health/Watch': 'public',
  '/grpc.health.v1.Health/List': 'public',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'public',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'public',
  '/shardwrite.v1.CommandStreamService/Execute': 'command',
  '/shardwrite.v1.EventStoreService/ReadStream': 'read',
  '/shardwrite.v1.SubscriptionService/Subscribe': 'read',
  '/shardwrite.v1.ConsumerGroupService/Consume': 'read',
  // The ring (shard ids and addresses) for clients that send straight to the owner shards.
  '/shardwrite.v1.RingService/WatchRing': 'read',
  '/shardwrite.v1.RingService/GetRing': 'read',
  '/shardwrite.internal.v1.ShardFeed/Follow': 'read',
  '/shardwrite.internal.v1.ShardLink/Execute': 'link',
  '/shardwrite.v1.DataSubjectService/EraseSubject': 'admin',
  '/shardwrite.v1.DataSubjectService/ReenableSubject': 'admin',
};

export type PermissionTable = ReadonlyMap<string, Permission>;

/** The table: the fixed entries, and every command RPC of `modules`. */
export function permissionTable(modules: readonly DomainModule[]): PermissionTable {
  const table = new Map<string, Permission>(Object.entries(FIXED_PERMISSIONS));
  for (const m of modules) for (const c of m.commands) table.set(`/${m.service}/${c.method}`, 'command');
  return table;
}

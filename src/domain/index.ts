/**
 * The domains this service runs. Registering an aggregate type is one line
 * in `modules`; the pipeline, the shard's gRPC server and the router find
 * deciders and command specs through the two lookups below.
 */
import type { AnyDecider } from './decider.js';
import type { CommandSpec, DomainModule } from './module.js';
import { orders } from './orders/index.js';
import { inventory } from './inventory/index.js';
import { processManagerModule } from '../process-managers/module.js';
import { processManagers } from '../process-managers/index.js';

/** Every domain module the service runs; process managers register in `src/process-managers/index.ts`. */
export const modules: readonly DomainModule[] = [orders, inventory, ...[processManagerModule(processManagers)].filter((m) => m !== undefined)];

/**
 * Deciders by aggregate type (`order-header`, …). Throws when two deciders
 * claim the same aggregate type, since streams are named after it.
 */
export function deciderRegistry(domainModules: readonly DomainModule[]): Map<string, AnyDecider> {
  const registry = new Map<string, AnyDecider>();
  for (const module of domainModules) {
    for (const decider of module.deciders) {
      if (registry.has(decider.aggregateType)) {
        throw new Error(`aggregate type ${decider.aggregateType} is registered twice`);
      }
      registry.set(decider.aggregateType, decider);
    }
  }
  return registry;
}

/**
 * Command specs by `${service}/${method}` (e.g.
 * `shardwrite.v1.OrderService/PlaceOrder`, the gRPC path without its leading
 * slash). Throws on a duplicate method, and on a spec whose aggregate type no
 * decider of its module handles, so a wiring mistake fails at start-up rather
 * than on the first command.
 */
export function commandSpecs(domainModules: readonly DomainModule[]): Map<string, CommandSpec> {
  const specs = new Map<string, CommandSpec>();
  for (const module of domainModules) {
    const types = new Set(module.deciders.map((d) => d.aggregateType));
    for (const spec of module.commands) {
      const key = `${module.service}/${spec.method}`;
      if (specs.has(key)) throw new Error(`command ${key} is registered twice`);
      if (!types.has(spec.aggregateType)) {
        throw new Error(`command ${key} targets ${spec.aggregateType}, which no decider of ${module.service} handles`);
      }
      specs.set(key, spec);
    }
  }
  return specs;
}

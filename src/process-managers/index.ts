/**
 * The process managers this service runs. Registering one is one line in
 * `processManagers`: its instances become an aggregate type of the shards
 * (through `processManagerModule`, registered in `src/domain/index.ts`) and
 * the worker (`shardwrite pm-worker`) drives it.
 */
import type { AnyProcessManager } from './definition.js';
import { orderFulfilment } from './order-fulfilment.js';

export * from './definition.js';
export * from './instance.js';
export { PROCESS_MANAGER_SERVICE, processManagerModule } from './module.js';
export * from './order-fulfilment.js';

/** Every process manager the service runs. */
export const processManagers: readonly AnyProcessManager[] = [orderFulfilment];

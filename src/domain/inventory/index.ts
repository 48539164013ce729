/**
 * The inventory domain as the service sees it: the `inventory` aggregate
 * (stock per SKU) and how each `shardwrite.v1.InventoryService` RPC becomes a
 * command on it. Every spec routes by `sku`.
 */
import type { DomainModule } from '../module.js';
import type { FieldViolation } from '../../errors.js';
import { commandSpec } from '../command-spec.js';
import { checkId } from '../validation.js';
import { INVENTORY, MAX_UNITS_PER_COMMAND, stock, type ReceiveStock, type ReleaseReservation, type ReserveStock } from './stock.js';

export * from './stock.js';

/** The gRPC service that carries inventory commands. */
export const INVENTORY_SERVICE = 'shardwrite.v1.InventoryService';

const toStock = { aggregateType: INVENTORY, idField: 'sku' };

/** A count of units: an integer in 1..`MAX_UNITS_PER_COMMAND`. */
function checkUnits(out: FieldViolation[], field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    out.push({ field, description: 'must be an integer' });
    return 0;
  }
  if (value < 1 || value > MAX_UNITS_PER_COMMAND) {
    out.push({ field, description: `must be between 1 and ${MAX_UNITS_PER_COMMAND}` });
    return 0;
  }
  return value;
}

// A receipt retried without a command id would count the goods twice.
const receiveStock = commandSpec<ReceiveStock>(toStock, 'ReceiveStock', (r, out) => ({ quantity: checkUnits(out, 'quantity', r.quantity) }), {
  requireCommandId: 'a retry of a stock receipt must never count it twice',
});

const reserveStock = commandSpec<ReserveStock>(toStock, 'ReserveStock', (r, out) => ({
  orderId: checkId(out, 'order_id', r.orderId),
  quantity: checkUnits(out, 'quantity', r.quantity),
}));

const releaseReservation = commandSpec<ReleaseReservation>(toStock, 'ReleaseReservation', (r, out) => ({
  orderId: checkId(out, 'order_id', r.orderId),
}));

/** The inventory domain: the `inventory` decider and one CommandSpec per `InventoryService` RPC. */
export const inventory: DomainModule = {
  service: INVENTORY_SERVICE,
  deciders: [stock],
  commands: [receiveStock, reserveStock, releaseReservation],
};

/**
 * The order domain as the service sees it: three aggregates on one order id
 * and how each `shardwrite.v1.OrderService` RPC becomes a command on one of
 * them.
 */
import type { Command } from '../decider.js';
import type { CommandSpec, DomainModule, RoutedCommand } from '../module.js';
import type { FieldViolation } from '../../errors.js';
import {
  MAX_MONEY_CENTS,
  TEXT_LIMITS,
  checkAddress,
  checkCommandId,
  checkCurrency,
  checkEmail,
  checkExpectedVersion,
  checkId,
  checkMoneyCents,
  checkQuantity,
  checkText,
  requireMessage,
  throwIfViolations,
} from '../validation.js';
import {
  ORDER_HEADER,
  orderHeader,
  type CancelOrder,
  type MarkPaymentCaptured,
  type PlaceOrder,
  type ShipOrder,
  type UpdateShippingAddress,
} from './header.js';
import { MAX_LINES_PER_COMMAND, ORDER_LINES, orderLines, type AddOrderLine, type AddOrderLines, type RemoveOrderLine } from './lines.js';
import { ORDER_PAYMENT, orderPayment, type AuthorizePayment, type CapturePayment, type RefundPayment } from './payment.js';

export * from './header.js';
export * from './lines.js';
export * from './payment.js';

/** The gRPC service that carries order commands. */
export const ORDER_SERVICE = 'shardwrite.v1.OrderService';

interface SpecOptions {
  /**
   * `command_id` must be set: commands a retry could double (money). Without
   * it a client that lost a reply cannot retry safely.
   */
  readonly requireCommandId?: boolean;
}

type Reader<C extends Command> = (request: Record<string, unknown>, out: FieldViolation[]) => C['data'];

/**
 * Builds a CommandSpec whose `toCommand` checks the fields every order
 * request shares (`order_id` → aggregate id, `command_id`, `expected_version`)
 * plus the method's own fields, then throws one ValidationError with all
 * violations or returns the routed command. `readData` is typed by the
 * command, so a request field cannot drift from the decider's command shape.
 */
function commandSpec<C extends Command>(aggregateType: string, method: C['type'], readData: Reader<C>, options: SpecOptions = {}): CommandSpec {
  return {
    method,
    aggregateType,
    toCommand(input: unknown): RoutedCommand {
      const request = ownFields(requireMessage(input));
      const out: FieldViolation[] = [];
      const aggregateId = checkId(out, 'order_id', request.orderId);
      const commandId = checkCommandId(out, 'command_id', request.commandId);
      if (options.requireCommandId && commandId === undefined && !out.some((v) => v.field === 'command_id')) {
        out.push({ field: 'command_id', description: 'is required: a retry of a money command must never apply it twice' });
      }
      const expectedVersion = checkExpectedVersion(out, 'expected_version', request.expectedVersion);
      const data = readData(request, out);
      throwIfViolations(out);
      return {
        aggregateType,
        aggregateId,
        ...(commandId !== undefined ? { commandId } : {}),
        ...(expectedVersion !== undefined ? { expectedVersion } : {}),
        command: { type: method, data },
      };
    },
  };
}

// Only own properties count: an untrusted object must not supply fields
// through its prototype chain.
function ownFields(request: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(request)) fields[key] = request[key];
  return fields;
}

const placeOrder = commandSpec<PlaceOrder>(ORDER_HEADER, 'PlaceOrder', (r, out) => ({
  customerId: checkId(out, 'customer_id', r.customerId),
  customerEmail: checkEmail(out, 'customer_email', r.customerEmail),
  shippingAddress: checkAddress(out, 'shipping_address', r.shippingAddress),
}));

const updateShippingAddress = commandSpec<UpdateShippingAddress>(ORDER_HEADER, 'UpdateShippingAddress', (r, out) => ({
  shippingAddress: checkAddress(out, 'shipping_address', r.shippingAddress),
}));

const shipOrder = commandSpec<ShipOrder>(ORDER_HEADER, 'ShipOrder', (r, out) => ({
  carrier: checkText(out, 'carrier', r.carrier, TEXT_LIMITS.carrier),
  trackingNumber: checkText(out, 'tracking_number', r.trackingNumber, TEXT_LIMITS.trackingNumber),
}));

const cancelOrder = commandSpec<CancelOrder>(ORDER_HEADER, 'CancelOrder', (r, out) => ({
  reason: checkText(out, 'reason', r.reason, TEXT_LIMITS.reason),
}));

/** The fields of one new line (AddOrderLine's, or one of AddOrderLines'), each violation named `${prefix}field`. */
function readLine(r: Record<string, unknown>, out: FieldViolation[], prefix = ''): AddOrderLine['data'] {
  const lineId = checkId(out, `${prefix}line_id`, r.lineId);
  const sku = checkId(out, `${prefix}sku`, r.sku);
  const quantity = checkQuantity(out, `${prefix}quantity`, r.quantity);
  const unitPriceCents = checkMoneyCents(out, `${prefix}unit_price_cents`, r.unitPriceCents, 0);
  // Each factor is bounded on its own, but 10^4 × 10^12 is past 2^53: bound
  // the line total so it stays exact and within the same money limit.
  if (quantity * unitPriceCents > MAX_MONEY_CENTS) {
    out.push({ field: `${prefix}unit_price_cents`, description: `quantity × unit_price_cents must be at most ${MAX_MONEY_CENTS}` });
  }
  return { lineId, sku, quantity, unitPriceCents };
}

const addOrderLine = commandSpec<AddOrderLine>(ORDER_LINES, 'AddOrderLine', (r, out) => readLine(r, out));

const addOrderLines = commandSpec<AddOrderLines>(ORDER_LINES, 'AddOrderLines', (r, out) => {
  const raw = r.lines;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_LINES_PER_COMMAND) {
    out.push({ field: 'lines', description: `must hold 1..${MAX_LINES_PER_COMMAND} lines` });
    return { lines: [] };
  }
  const ids = new Set<string>();
  const lines = raw.map((line: unknown, i) => {
    if (typeof line !== 'object' || line === null) {
      out.push({ field: `lines[${i}]`, description: 'must be a line' });
      return { lineId: '', sku: '', quantity: 0, unitPriceCents: 0 };
    }
    const before = out.length;
    const read = readLine(ownFields(line as Record<string, unknown>), out, `lines[${i}].`);
    // Only a well-formed id can repeat another.
    if (!out.slice(before).some((v) => v.field.endsWith('.line_id'))) {
      if (ids.has(read.lineId)) out.push({ field: `lines[${i}].line_id`, description: 'repeats an earlier line of this command' });
      ids.add(read.lineId);
    }
    return read;
  });
  return { lines };
});

const removeOrderLine = commandSpec<RemoveOrderLine>(ORDER_LINES, 'RemoveOrderLine', (r, out) => ({
  lineId: checkId(out, 'line_id', r.lineId),
}));

const authorizePayment = commandSpec<AuthorizePayment>(ORDER_PAYMENT, 'AuthorizePayment', (r, out) => ({
  amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
  currency: checkCurrency(out, 'currency', r.currency),
}), { requireCommandId: true });

const capturePayment = commandSpec<CapturePayment>(ORDER_PAYMENT, 'CapturePayment', (r, out) => ({
  amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
}), { requireCommandId: true });

const markPaymentCaptured = commandSpec<MarkPaymentCaptured>(ORDER_HEADER, 'MarkPaymentCaptured', (r, out) => ({
  amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
}));

const refundPayment = commandSpec<RefundPayment>(ORDER_PAYMENT, 'RefundPayment', (r, out) => ({
  reason: checkText(out, 'reason', r.reason, TEXT_LIMITS.reason),
}));

/**
 * The order domain: deciders `order-header`, `order-lines`, `order-payment`
 * and one CommandSpec per `OrderService` RPC. Every spec routes by
 * `order_id`, so an order's three streams live on the same shard.
 */
export const orders: DomainModule = {
  service: ORDER_SERVICE,
  deciders: [orderHeader, orderLines, orderPayment],
  commands: [
    placeOrder,
    updateShippingAddress,
    shipOrder,
    cancelOrder,
    addOrderLine,
    removeOrderLine,
    addOrderLines,
    authorizePayment,
    capturePayment,
    markPaymentCaptured,
    refundPayment,
  ],
};

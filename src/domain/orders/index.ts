/**
 * The order domain as the service sees it: three aggregates on one order id
 * and how each `shardwrite.v1.OrderService` RPC becomes a command on one of
 * them.
 */
import type { DomainModule } from '../module.js';
import type { FieldViolation } from '../../errors.js';
import { commandSpec, ownFields } from '../command-spec.js';
import { MAX_MONEY_CENTS, TEXT_LIMITS, checkAddress, checkCurrency, checkEmail, checkId, checkMoneyCents, checkQuantity, checkText } from '../validation.js';
import { ORDER_HEADER, orderHeader, type CancelOrder, type MarkPaymentCaptured, type PlaceOrder, type ShipOrder, type UpdateShippingAddress } from './header.js';
import { MAX_LINES_PER_COMMAND, ORDER_LINES, orderLines, type AddOrderLine, type AddOrderLines, type RemoveOrderLine } from './lines.js';
import { ORDER_PAYMENT, orderPayment, type AuthorizePayment, type CapturePayment, type RefundPayment } from './payment.js';

export * from './header.js';
export * from './lines.js';
export * from './payment.js';

/** The gRPC service that carries order commands. */
export const ORDER_SERVICE = 'shardwrite.v1.OrderService';

const toHeader = { aggregateType: ORDER_HEADER, idField: 'order_id' };
const toLines = { aggregateType: ORDER_LINES, idField: 'order_id' };
const toPayment = { aggregateType: ORDER_PAYMENT, idField: 'order_id' };
/** Commands a retry could double (money): without `command_id` a client that lost a reply cannot retry safely. */
const MONEY = { requireCommandId: 'a retry of a money command must never apply it twice' };

const placeOrder = commandSpec<PlaceOrder>(toHeader, 'PlaceOrder', (r, out) => ({
  customerId: checkId(out, 'customer_id', r.customerId),
  customerEmail: checkEmail(out, 'customer_email', r.customerEmail),
  shippingAddress: checkAddress(out, 'shipping_address', r.shippingAddress),
}));

const updateShippingAddress = commandSpec<UpdateShippingAddress>(toHeader, 'UpdateShippingAddress', (r, out) => ({
  shippingAddress: checkAddress(out, 'shipping_address', r.shippingAddress),
}));

const shipOrder = commandSpec<ShipOrder>(toHeader, 'ShipOrder', (r, out) => ({
  carrier: checkText(out, 'carrier', r.carrier, TEXT_LIMITS.carrier),
  trackingNumber: checkText(out, 'tracking_number', r.trackingNumber, TEXT_LIMITS.trackingNumber),
}));

const cancelOrder = commandSpec<CancelOrder>(toHeader, 'CancelOrder', (r, out) => ({
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

const addOrderLine = commandSpec<AddOrderLine>(toLines, 'AddOrderLine', (r, out) => readLine(r, out));

const addOrderLines = commandSpec<AddOrderLines>(toLines, 'AddOrderLines', (r, out) => {
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

const removeOrderLine = commandSpec<RemoveOrderLine>(toLines, 'RemoveOrderLine', (r, out) => ({
  lineId: checkId(out, 'line_id', r.lineId),
}));

const authorizePayment = commandSpec<AuthorizePayment>(
  toPayment,
  'AuthorizePayment',
  (r, out) => ({
    amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
    currency: checkCurrency(out, 'currency', r.currency),
  }),
  MONEY,
);

const capturePayment = commandSpec<CapturePayment>(
  toPayment,
  'CapturePayment',
  (r, out) => ({
    amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
  }),
  MONEY,
);

const markPaymentCaptured = commandSpec<MarkPaymentCaptured>(toHeader, 'MarkPaymentCaptured', (r, out) => ({
  amountCents: checkMoneyCents(out, 'amount_cents', r.amountCents, 1),
}));

const refundPayment = commandSpec<RefundPayment>(toPayment, 'RefundPayment', (r, out) => ({
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
  commands: [placeOrder, updateShippingAddress, shipOrder, cancelOrder, addOrderLine, removeOrderLine, addOrderLines, authorizePayment, capturePayment, markPaymentCaptured, refundPayment],
};

/**
 * `order-fulfilment`: the rules that span an order's header and payment.
 *
 * - An order is placed → if its payment is not authorized within
 *   `paymentTimeoutMs` of its `placedAt`, the order is cancelled. (The
 *   instance decides on what it has been told: an authorization that reaches
 *   it after the timeout fired does not undo the cancellation; a capture after
 *   it is refunded.)
 * - Its payment is captured → the header is told (`MarkPaymentCaptured`,
 *   which is what lets `ShipOrder` through) and the order is **shipped
 *   automatically** (carrier `shardwrite-auto`, tracking number = order id):
 *   this reference business ships whatever is paid. A shipment refused because
 *   the order was cancelled meanwhile is expected, not a failure.
 * - The order is cancelled while money is captured → the payment is refunded
 *   (`RefundPayment`), once.
 *
 * One instance per order id (`pm-order-fulfilment-<order id>`), started by
 * `OrderPlaced`; payment events that arrive first wait on the instance.
 */
import { ORDER_HEADER, ORDER_PAYMENT } from '../domain/orders/index.js';
import { defineProcessManager, type PmCommand, type PmInput } from './definition.js';

/** How long a placed order may wait for its payment's authorization. @default 900000 (15 min) */
export const DEFAULT_PAYMENT_TIMEOUT_MS = 15 * 60_000;
/** The carrier of automatic shipments. */
export const AUTO_CARRIER = 'shardwrite-auto';

export interface FulfilmentSettings {
  readonly paymentTimeoutMs: number;
}

/** Plain JSON. `…Sent` flags are the instance's own decisions, so none is made twice. */
export interface FulfilmentState {
  readonly orderId: string;
  readonly placed: boolean;
  /** When the header placed the order (its `placedAt`): the payment timeout counts from there. */
  readonly placedAt: string;
  readonly cancelled: boolean;
  readonly shipped: boolean;
  readonly authorized: boolean;
  readonly capturedCents: number;
  readonly refunded: boolean;
  readonly timeoutArmed: boolean;
  readonly timedOut: boolean;
  readonly markSent: boolean;
  readonly shipSent: boolean;
  readonly refundSent: boolean;
  readonly cancelSent: boolean;
}

const initial: FulfilmentState = {
  orderId: '',
  placed: false,
  placedAt: '',
  cancelled: false,
  shipped: false,
  authorized: false,
  capturedCents: 0,
  refunded: false,
  timeoutArmed: false,
  timedOut: false,
  markSent: false,
  shipSent: false,
  refundSent: false,
  cancelSent: false,
};

/** The source event types the instance reads. */
export const FULFILMENT_EVENT_TYPES = ['OrderPlaced', 'OrderCancelled', 'OrderShipped', 'PaymentAuthorized', 'PaymentCaptured', 'PaymentRefunded'] as const;

function orderIdOf(input: PmInput): string | undefined {
  if (input.kind !== 'event') return undefined;
  // Source streams are `order-header-<id>` / `order-payment-<id>`.
  for (const prefix of [`${ORDER_HEADER}-`, `${ORDER_PAYMENT}-`]) {
    if (input.sourceStreamId.startsWith(prefix)) return input.sourceStreamId.slice(prefix.length);
  }
  return undefined;
}

/**
 * Reads `PM_PAYMENT_TIMEOUT_MS` (or, as the architecture brief names it,
 * `PAYMENT_TIMEOUT_MS`): a positive integer of milliseconds.
 */
export function readFulfilmentSettings(env: Readonly<Record<string, string | undefined>>): FulfilmentSettings {
  const raw = env.PM_PAYMENT_TIMEOUT_MS || env.PAYMENT_TIMEOUT_MS;
  if (raw === undefined || raw === '') return { paymentTimeoutMs: DEFAULT_PAYMENT_TIMEOUT_MS };
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`PM_PAYMENT_TIMEOUT_MS must be a positive integer of milliseconds, got ${raw}`);
  return { paymentTimeoutMs: n };
}

export const orderFulfilment = defineProcessManager<FulfilmentState, FulfilmentSettings>({
  name: 'order-fulfilment',
  sources: { aggregateTypes: [ORDER_HEADER, ORDER_PAYMENT], eventTypes: [...FULFILMENT_EVENT_TYPES] },
  startsWith: ['OrderPlaced'],
  correlate: (event) =>
    (event.aggregateType === ORDER_HEADER || event.aggregateType === ORDER_PAYMENT) && (FULFILMENT_EVENT_TYPES as readonly string[]).includes(event.type) ? event.aggregateId : undefined,
  catchUpStreams: (orderId) => [
    { aggregateType: ORDER_HEADER, aggregateId: orderId },
    { aggregateType: ORDER_PAYMENT, aggregateId: orderId },
  ],
  readSettings: readFulfilmentSettings,
  settingsEnv: ['PM_PAYMENT_TIMEOUT_MS', 'PAYMENT_TIMEOUT_MS'],
  stateSchemaVersion: 1,
  initialState: () => initial,

  evolve(state, input) {
    switch (input.kind) {
      case 'event': {
        const orderId = state.orderId || (orderIdOf(input) ?? '');
        const data = (input.data ?? {}) as { amountCents?: unknown; placedAt?: unknown };
        switch (input.type) {
          case 'OrderPlaced':
            return { ...state, orderId, placed: true, placedAt: state.placedAt || (typeof data.placedAt === 'string' ? data.placedAt : '') };
          case 'OrderCancelled':
            return { ...state, orderId, cancelled: true };
          case 'OrderShipped':
            return { ...state, orderId, shipped: true };
          case 'PaymentAuthorized':
            return { ...state, orderId, authorized: true };
          case 'PaymentCaptured':
            return { ...state, orderId, capturedCents: state.capturedCents + (typeof data.amountCents === 'number' ? data.amountCents : 0) };
          case 'PaymentRefunded':
            return { ...state, orderId, refunded: true };
          default:
            return state;
        }
      }
      case 'timeout':
        return input.name === 'payment' ? { ...state, timedOut: true } : state;
      case 'scheduled':
        return input.name === 'payment' ? { ...state, timeoutArmed: true } : state;
      case 'sent':
        switch (input.method) {
          case 'markPaymentCaptured':
            return { ...state, markSent: true };
          case 'shipOrder':
            return { ...state, shipSent: true };
          case 'refundPayment':
            return { ...state, refundSent: true };
          case 'cancelOrder':
            return { ...state, cancelSent: true };
          default:
            return state;
        }
      case 'rejected':
        return state;
      default:
        return state;
    }
  },

  decide(state, { settings, timeouts }) {
    const orderId = state.orderId;
    const commands: PmCommand[] = [];
    const schedule: { name: string; afterMs: number }[] = [];
    const cancel: string[] = [];
    const open = state.placed && !state.cancelled && !state.shipped;

    if (open && !state.authorized && !state.timeoutArmed) {
      schedule.push({ name: 'payment', afterMs: settings.paymentTimeoutMs, ...(state.placedAt ? { from: state.placedAt } : {}) });
    }
    if ((state.authorized || !open) && timeouts.payment !== undefined) cancel.push('payment');

    if (state.capturedCents > 0 && !state.markSent && !state.shipped) {
      commands.push({ method: 'markPaymentCaptured', request: { orderId, amountCents: state.capturedCents }, tolerateRejection: true });
    }
    if (state.capturedCents > 0 && open && !state.shipSent) {
      commands.push({
        method: 'shipOrder',
        request: { orderId, carrier: AUTO_CARRIER, trackingNumber: orderId.slice(0, 100) },
        tolerateRejection: true,
      });
    }
    if (state.cancelled && state.capturedCents > 0 && !state.refunded && !state.refundSent) {
      commands.push({ method: 'refundPayment', request: { orderId, reason: 'the order was cancelled after its payment was captured' } });
    }
    if (state.timedOut && open && !state.authorized && !state.cancelSent) {
      commands.push({
        method: 'cancelOrder',
        request: { orderId, reason: 'the payment was not authorized in time' },
        tolerateRejection: true,
      });
    }
    return { commands, schedule, cancel };
  },

  isComplete: (s) => s.shipped || (s.cancelled && (s.capturedCents === 0 || s.refunded)),
});

/**
 * `order-payment`: one authorization per order, then any number of captures
 * that together stay within it.
 */
import type { Command, Decider, DomainEvent } from '../decider.js';
import { ORDER_HEADER } from './header.js';
import { BusinessRuleError } from '../../errors.js';

/** The aggregate type; streams are `order-payment-<order id>`. */
export const ORDER_PAYMENT = 'order-payment';

export type AuthorizePayment = Command<'AuthorizePayment', { readonly amountCents: number; readonly currency: string }>;
export type CapturePayment = Command<'CapturePayment', { readonly amountCents: number }>;
export type RefundPayment = Command<'RefundPayment', { readonly reason: string }>;
/** Every command `order-payment` decides. */
export type OrderPaymentCommand = AuthorizePayment | CapturePayment | RefundPayment;

export type PaymentAuthorized = DomainEvent<'PaymentAuthorized', { readonly amountCents: number; readonly currency: string; readonly authorizedAt: string }>;
/** `currency` is the authorization's, repeated so a consumer needs no other event to read the amount. */
export type PaymentCaptured = DomainEvent<'PaymentCaptured', { readonly amountCents: number; readonly currency: string; readonly capturedAt: string }>;
/** Refunds everything captured so far. */
export type PaymentRefunded = DomainEvent<'PaymentRefunded', { readonly amountCents: number; readonly currency: string; readonly reason: string; readonly refundedAt: string }>;
/** Every event `order-payment` emits (all at schema version 1). */
export type OrderPaymentEvent = PaymentAuthorized | PaymentCaptured | PaymentRefunded;

/** Plain JSON; amounts in cents of `currency`. */
export type OrderPaymentState =
  | { readonly status: 'none' }
  | {
      readonly status: 'authorized';
      readonly authorizedCents: number;
      readonly currency: string;
      readonly capturedCents: number;
      /** Set once the captured amount was refunded; no capture or refund follows. */
      readonly refunded: boolean;
    };

/**
 * The `order-payment` decider.
 *
 * - `AuthorizePayment` → `PaymentAuthorized`; only once (BusinessRuleError after).
 * - `CapturePayment` → `PaymentCaptured`; BusinessRuleError without an
 *   authorization, or when the captures would total more than was authorized.
 * - `RefundPayment` → `PaymentRefunded` of everything captured; once, and only
 *   after a capture. No capture follows a refund.
 */
export const orderPayment: Decider<OrderPaymentCommand, OrderPaymentEvent, OrderPaymentState> = {
  aggregateType: ORDER_PAYMENT,
  tenantFrom: ORDER_HEADER,
  // 2: `refunded` was added.
  stateSchemaVersion: 2,
  eventSchemaVersions: {},
  upcasters: {},

  initialState: () => ({ status: 'none' }),

  decide(command, state) {
    const at = command.context.at;
    switch (command.type) {
      case 'AuthorizePayment':
        if (state.status !== 'none') throw new BusinessRuleError('the payment is already authorized');
        return [
          {
            type: 'PaymentAuthorized',
            data: { amountCents: command.data.amountCents, currency: command.data.currency, authorizedAt: at },
          },
        ];
      case 'CapturePayment': {
        // Not NOT_FOUND: the order may well exist; it is the rule "authorize
        // before capture" that refuses the command.
        if (state.status !== 'authorized') throw new BusinessRuleError('the payment has not been authorized');
        if (state.refunded) throw new BusinessRuleError('the payment was refunded');
        const remaining = state.authorizedCents - state.capturedCents;
        if (command.data.amountCents > remaining) {
          throw new BusinessRuleError(`cannot capture ${command.data.amountCents}: only ${remaining} of ${state.authorizedCents} ${state.currency} cents remain authorized`);
        }
        return [
          {
            type: 'PaymentCaptured',
            data: { amountCents: command.data.amountCents, currency: state.currency, capturedAt: at },
          },
        ];
      }
      case 'RefundPayment':
        if (state.status !== 'authorized' || state.capturedCents === 0) throw new BusinessRuleError('nothing was captured to refund');
        if (state.refunded) throw new BusinessRuleError('the payment was already refunded');
        return [
          {
            type: 'PaymentRefunded',
            data: { amountCents: state.capturedCents, currency: state.currency, reason: command.data.reason, refundedAt: at },
          },
        ];
      default:
        throw new Error(`order-payment cannot decide ${(command as { type: string }).type}`);
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'PaymentAuthorized':
        return {
          status: 'authorized',
          authorizedCents: event.data.amountCents,
          currency: event.data.currency,
          capturedCents: 0,
          refunded: false,
        };
      case 'PaymentCaptured':
        // A stored stream is the truth; a capture without an authorization can
        // only come from a hand-edited stream and is ignored rather than fatal.
        if (state.status !== 'authorized') return state;
        return { ...state, capturedCents: state.capturedCents + event.data.amountCents };
      case 'PaymentRefunded':
        if (state.status !== 'authorized') return state;
        return { ...state, refunded: true };
      default:
        return state;
    }
  },
};

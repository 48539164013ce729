/**
 * `order-header`: an order's life cycle (placed → shipped | cancelled), its
 * customer and where it goes. Lines and payment are separate aggregates with
 * their own streams, so a busy cart never contends with shipping.
 */
import type { Command, Decider, DomainEvent } from '../decider.js';
import { AggregateNotFoundError, BusinessRuleError } from '../../errors.js';
import type { Address } from '../validation.js';

/** The aggregate type; streams are `order-header-<order id>`. */
export const ORDER_HEADER = 'order-header';

export type PlaceOrder = Command<'PlaceOrder', { readonly customerId: string; readonly customerEmail: string; readonly shippingAddress: Address }>;
export type UpdateShippingAddress = Command<'UpdateShippingAddress', { readonly shippingAddress: Address }>;
export type ShipOrder = Command<'ShipOrder', { readonly carrier: string; readonly trackingNumber: string }>;
export type CancelOrder = Command<'CancelOrder', { readonly reason: string }>;
/** Sent by the order-fulfilment process manager when the order's payment was captured. */
export type MarkPaymentCaptured = Command<'MarkPaymentCaptured', { readonly amountCents: number }>;
/** Every command `order-header` decides. */
export type OrderHeaderCommand = PlaceOrder | UpdateShippingAddress | ShipOrder | CancelOrder | MarkPaymentCaptured;

/** `customerEmail` and `shippingAddress` are personal data. */
export type OrderPlaced = DomainEvent<
  'OrderPlaced',
  {
    readonly customerId: string;
    readonly customerEmail: string;
    readonly shippingAddress: Address;
    readonly placedAt: string;
  }
>;
/** `shippingAddress` is personal data of `customerId` (schema 2 names the customer; schema 1 did not). */
export type ShippingAddressUpdated = DomainEvent<'ShippingAddressUpdated', { readonly customerId: string; readonly shippingAddress: Address; readonly updatedAt: string }>;
export type OrderShipped = DomainEvent<'OrderShipped', { readonly carrier: string; readonly trackingNumber: string; readonly shippedAt: string }>;
export type OrderCancelled = DomainEvent<'OrderCancelled', { readonly reason: string; readonly cancelledAt: string }>;
export type PaymentCaptureRecorded = DomainEvent<'PaymentCaptureRecorded', { readonly amountCents: number; readonly recordedAt: string }>;
/** Every event `order-header` emits (all at schema version 1). */
export type OrderHeaderEvent = OrderPlaced | ShippingAddressUpdated | OrderShipped | OrderCancelled | PaymentCaptureRecorded;

/**
 * What every existing order knows. No personal data: the customer's e-mail and
 * address live only in the (encrypted) events, so snapshots, the owner cache
 * and Redis never hold them, and an erased customer's order still decides.
 */
export interface PlacedOrderFacts {
  /** The data subject of the order's personal data (an opaque id, not personal data itself). */
  readonly customerId: string;
  readonly placedAt: string;
  /** Whether the header was told its payment was captured (MarkPaymentCaptured): what lets it ship. */
  readonly paymentCaptured: boolean;
}

/**
 * The state of one order header, discriminated by `status` so that a shipped
 * order always has its shipment and a cancelled one its reason. Plain JSON.
 */
export type OrderHeaderState =
  | { readonly status: 'none' }
  | ({ readonly status: 'placed' } & PlacedOrderFacts)
  | ({
      readonly status: 'shipped';
      readonly carrier: string;
      readonly trackingNumber: string;
      readonly shippedAt: string;
    } & PlacedOrderFacts)
  | ({ readonly status: 'cancelled'; readonly cancellationReason: string; readonly cancelledAt: string } & PlacedOrderFacts);

/**
 * The `order-header` decider.
 *
 * - `PlaceOrder` → `OrderPlaced`; refused (BusinessRuleError) if the order exists.
 * - `UpdateShippingAddress` → `ShippingAddressUpdated`; only while placed.
 * - `ShipOrder` → `OrderShipped`; only while placed (not twice, not after
 *   cancelling) and only once the payment was captured: the header cannot see
 *   the payment stream, so the order-fulfilment process manager tells it
 *   (`MarkPaymentCaptured`) and the rule stays local.
 * - `CancelOrder` → `OrderCancelled`; only while placed.
 * - `MarkPaymentCaptured` → `PaymentCaptureRecorded`; once, while placed or
 *   cancelled (a capture that raced a cancellation is still a fact).
 *
 * Every command but `PlaceOrder` on an order that does not exist throws
 * `AggregateNotFoundError`.
 */
export const orderHeader: Decider<OrderHeaderCommand, OrderHeaderEvent, OrderHeaderState> = {
  aggregateType: ORDER_HEADER,
  // 2: `paymentCaptured` was added to the facts. 3: the e-mail and address left the state.
  stateSchemaVersion: 3,
  eventSchemaVersions: { ShippingAddressUpdated: 2 },
  // A schema-1 update did not name its customer: '' (it was stored in plaintext, before encryption).
  upcasters: { ShippingAddressUpdated: { 1: (data) => ({ customerId: '', ...(data as object) }) } },
  personalData: {
    OrderPlaced: { subjectField: 'customerId', fields: ['customerEmail', 'shippingAddress'] },
    ShippingAddressUpdated: { subjectField: 'customerId', fields: ['shippingAddress'] },
  },

  initialState: () => ({ status: 'none' }),

  decide(command, state) {
    const at = command.context.at;
    if (command.type === 'PlaceOrder') {
      if (state.status !== 'none') throw new BusinessRuleError('the order already exists');
      const { customerId, customerEmail, shippingAddress } = command.data;
      return [{ type: 'OrderPlaced', data: { customerId, customerEmail, shippingAddress, placedAt: at } }];
    }
    if (state.status === 'none') throw new AggregateNotFoundError('the order does not exist');
    switch (command.type) {
      case 'UpdateShippingAddress':
        refuseUnlessPlaced(state.status, 'change the shipping address of');
        return [{ type: 'ShippingAddressUpdated', data: { customerId: state.customerId, shippingAddress: command.data.shippingAddress, updatedAt: at } }];
      case 'ShipOrder':
        refuseUnlessPlaced(state.status, 'ship');
        if (!state.paymentCaptured) throw new BusinessRuleError('cannot ship an order whose payment has not been captured');
        return [
          {
            type: 'OrderShipped',
            data: { carrier: command.data.carrier, trackingNumber: command.data.trackingNumber, shippedAt: at },
          },
        ];
      case 'CancelOrder':
        refuseUnlessPlaced(state.status, 'cancel');
        return [{ type: 'OrderCancelled', data: { reason: command.data.reason, cancelledAt: at } }];
      case 'MarkPaymentCaptured':
        if (state.paymentCaptured) throw new BusinessRuleError('the payment capture is already recorded');
        if (state.status === 'shipped') throw new BusinessRuleError('cannot record a payment capture on an order that has shipped');
        return [{ type: 'PaymentCaptureRecorded', data: { amountCents: command.data.amountCents, recordedAt: at } }];
      default:
        throw new Error(`order-header cannot decide ${(command as { type: string }).type}`);
    }
  },

  evolve(state, event) {
    if (event.type === 'OrderPlaced') return { status: 'placed', customerId: event.data.customerId, placedAt: event.data.placedAt, paymentCaptured: false };
    // A stored stream is the truth, so evolve stays total: an event that
    // cannot apply (only possible in a hand-edited stream) leaves the state as
    // it is rather than making the whole stream unloadable.
    if (state.status === 'none') return state;
    const facts = placedFacts(state);
    switch (event.type) {
      case 'ShippingAddressUpdated':
        return state;
      case 'OrderShipped':
        return {
          status: 'shipped',
          ...facts,
          carrier: event.data.carrier,
          trackingNumber: event.data.trackingNumber,
          shippedAt: event.data.shippedAt,
        };
      case 'OrderCancelled':
        return { status: 'cancelled', ...facts, cancellationReason: event.data.reason, cancelledAt: event.data.cancelledAt };
      case 'PaymentCaptureRecorded':
        return { ...state, paymentCaptured: true };
      default:
        return state;
    }
  },
};

function refuseUnlessPlaced(status: 'placed' | 'shipped' | 'cancelled', action: string): void {
  if (status === 'shipped') throw new BusinessRuleError(`cannot ${action} an order that has shipped`);
  if (status === 'cancelled') throw new BusinessRuleError(`cannot ${action} an order that was cancelled`);
}

function placedFacts(state: PlacedOrderFacts): PlacedOrderFacts {
  return {
    customerId: state.customerId,
    placedAt: state.placedAt,
    paymentCaptured: state.paymentCaptured,
  };
}

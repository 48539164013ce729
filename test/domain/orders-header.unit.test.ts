import { upcast } from '../../src/domain/upcast.js';
import { describe, expect, it } from 'vitest';
import { AggregateNotFoundError, BusinessRuleError } from '../../src/errors.js';
import {
  orderHeader,
  type CancelOrder,
  type OrderCancelled,
  type OrderPlaced,
  type OrderShipped,
  type MarkPaymentCaptured,
  type PaymentCaptureRecorded,
  type PlaceOrder,
  type ShipOrder,
  type ShippingAddressUpdated,
  type UpdateShippingAddress,
} from '../../src/domain/orders/header.js';
import { AT, command, spec, stateAfter } from './support.js';

const address = { name: 'Ada Lovelace', line1: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };
const newAddress = { name: 'Ada King', line1: '1 Ockham Park', city: 'Ockham', postalCode: 'GU23 6NQ', country: 'GB' };

const placeOrder = command<PlaceOrder>('PlaceOrder', {
  customerId: 'c-1',
  customerEmail: 'ada@example.com',
  shippingAddress: address,
});
const updateAddress = command<UpdateShippingAddress>('UpdateShippingAddress', { shippingAddress: newAddress }, '2024-05-01T13:00:00.000Z');
const shipOrder = command<ShipOrder>('ShipOrder', { carrier: 'DHL', trackingNumber: 'JD0001' }, '2024-05-02T09:00:00.000Z');
const cancelOrder = command<CancelOrder>('CancelOrder', { reason: 'changed my mind' }, '2024-05-02T10:00:00.000Z');

const placed: OrderPlaced = {
  type: 'OrderPlaced',
  data: { customerId: 'c-1', customerEmail: 'ada@example.com', shippingAddress: address, placedAt: AT },
};
const shipped: OrderShipped = {
  type: 'OrderShipped',
  data: { carrier: 'DHL', trackingNumber: 'JD0001', shippedAt: '2024-05-02T09:00:00.000Z' },
};
const cancelled: OrderCancelled = {
  type: 'OrderCancelled',
  data: { reason: 'changed my mind', cancelledAt: '2024-05-02T10:00:00.000Z' },
};
const markCaptured = command<MarkPaymentCaptured>('MarkPaymentCaptured', { amountCents: 500 }, '2024-05-02T08:00:00.000Z');
const captureRecorded: PaymentCaptureRecorded = {
  type: 'PaymentCaptureRecorded',
  data: { amountCents: 500, recordedAt: '2024-05-02T08:00:00.000Z' },
};
const addressUpdated: ShippingAddressUpdated = {
  type: 'ShippingAddressUpdated',
  data: { customerId: 'c-1', shippingAddress: newAddress, updatedAt: '2024-05-01T13:00:00.000Z' },
};

const header = spec(orderHeader);

describe('order-header', () => {
  it('declares state schema version 3 (personal data left the state), so older snapshots are replayed', () => {
    expect(orderHeader.aggregateType).toBe('order-header');
    expect(orderHeader.stateSchemaVersion).toBe(3);
  });

  it('upcasts a schema-1 address update, which named no customer, to an empty customer id', () => {
    expect(upcast(orderHeader, 'ShippingAddressUpdated', 1, { shippingAddress: newAddress, updatedAt: AT })).toEqual({ customerId: '', shippingAddress: newAddress, updatedAt: AT });
  });

  describe('PlaceOrder', () => {
    it('places a new order, stamping it with the time the command was accepted', () => {
      header.given([]).when(placeOrder).then([placed]);
    });

    it('refuses to place an order that already exists', () => {
      header
        .given([placed])
        .when(placeOrder)
        .thenThrows(BusinessRuleError, /already exists/);
    });

    it('refuses to place an order again after it was cancelled', () => {
      header.given([placed, cancelled]).when(placeOrder).thenThrows(BusinessRuleError);
    });
  });

  describe('commands on an order that does not exist', () => {
    it.each([
      ['UpdateShippingAddress', updateAddress],
      ['ShipOrder', shipOrder],
      ['CancelOrder', cancelOrder],
    ] as const)('%s is refused as not found', (_name, cmd) => {
      header.given([]).when(cmd).thenThrows(AggregateNotFoundError);
    });
  });

  describe('UpdateShippingAddress', () => {
    it('changes the address of a placed order', () => {
      header.given([placed]).when(updateAddress).then([addressUpdated]);
    });

    it('is refused once the order has shipped', () => {
      header
        .given([placed, shipped])
        .when(updateAddress)
        .thenThrows(BusinessRuleError, /shipped/);
    });

    it('is refused once the order was cancelled', () => {
      header
        .given([placed, cancelled])
        .when(updateAddress)
        .thenThrows(BusinessRuleError, /cancelled/);
    });
  });

  describe('ShipOrder', () => {
    it('ships a placed order whose payment capture was recorded', () => {
      header.given([placed, captureRecorded]).when(shipOrder).then([shipped]);
    });

    it('refuses to ship a placed order whose payment capture was not recorded', () => {
      header
        .given([placed])
        .when(shipOrder)
        .thenThrows(BusinessRuleError, /payment has not been captured/);
    });

    it('ships an order whose address was changed', () => {
      header.given([placed, captureRecorded, addressUpdated]).when(shipOrder).then([shipped]);
    });

    it('refuses to ship an order twice', () => {
      header
        .given([placed, shipped])
        .when(shipOrder)
        .thenThrows(BusinessRuleError, /shipped/);
    });

    it('refuses to ship a cancelled order', () => {
      header
        .given([placed, cancelled])
        .when(shipOrder)
        .thenThrows(BusinessRuleError, /cancelled/);
    });
  });

  describe('MarkPaymentCaptured', () => {
    it('records the capture on a placed order, and on a cancelled one', () => {
      header.given([placed]).when(markCaptured).then([captureRecorded]);
      header.given([placed, cancelled]).when(markCaptured).then([captureRecorded]);
    });

    it('refuses to record it twice, or on a shipped order', () => {
      header
        .given([placed, captureRecorded])
        .when(markCaptured)
        .thenThrows(BusinessRuleError, /already recorded/);
      header
        .given([placed, shipped])
        .when(markCaptured)
        .thenThrows(BusinessRuleError, /shipped/);
    });
  });

  describe('CancelOrder', () => {
    it('cancels a placed order', () => {
      header.given([placed]).when(cancelOrder).then([cancelled]);
    });

    it('refuses to cancel a shipped order', () => {
      header
        .given([placed, shipped])
        .when(cancelOrder)
        .thenThrows(BusinessRuleError, /shipped/);
    });

    it('refuses to cancel an order twice', () => {
      header
        .given([placed, cancelled])
        .when(cancelOrder)
        .thenThrows(BusinessRuleError, /cancelled/);
    });
  });

  describe('state', () => {
    it('starts with no order', () => {
      expect(orderHeader.initialState()).toEqual({ status: 'none' });
    });

    it('holds the customer id and the shipment of a shipped order, and none of the personal data', () => {
      const state = stateAfter(orderHeader, [placed, addressUpdated, captureRecorded, shipped]);
      expect(state).toStrictEqual({
        status: 'shipped',
        customerId: 'c-1',
        placedAt: AT,
        paymentCaptured: true,
        carrier: 'DHL',
        trackingNumber: 'JD0001',
        shippedAt: '2024-05-02T09:00:00.000Z',
      });
      expect(JSON.stringify(state)).not.toMatch(/ada@example\.com|Ockham|Lovelace|St James/);
    });

    it("names the customer on an address update (its personal data is the customer's)", () => {
      header.given([placed]).when(updateAddress).then([addressUpdated]);
    });

    it('declares every personal field of its events, each with the field naming the subject', () => {
      expect(orderHeader.personalData).toEqual({
        OrderPlaced: { subjectField: 'customerId', fields: ['customerEmail', 'shippingAddress'] },
        ShippingAddressUpdated: { subjectField: 'customerId', fields: ['shippingAddress'] },
      });
    });

    it('holds the reason and time of a cancellation', () => {
      expect(stateAfter(orderHeader, [placed, cancelled])).toMatchObject({
        status: 'cancelled',
        cancellationReason: 'changed my mind',
        cancelledAt: '2024-05-02T10:00:00.000Z',
      });
    });

    it('does not mutate the state it evolves from', () => {
      const before = stateAfter(orderHeader, [placed]);
      const copy = structuredClone(before);
      orderHeader.evolve(before, shipped);
      expect(before).toStrictEqual(copy);
    });
  });
});

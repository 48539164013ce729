import { describe, expect, it } from 'vitest';
import { commandSpecs, deciderRegistry, modules } from '../../src/domain/index.js';
import { orders } from '../../src/domain/orders/index.js';
import type { DomainModule } from '../../src/domain/module.js';
import { expectThrow } from '../support/expect-error.js';

describe('domain registry', () => {
  it('registers the three order aggregates, inventory and the order-fulfilment process manager by type', () => {
    expect([...deciderRegistry(modules).keys()].sort()).toEqual(['inventory', 'order-header', 'order-lines', 'order-payment', 'pm-order-fulfilment']);
  });

  it('registers one command spec per OrderService, InventoryService and ProcessManagerService RPC, keyed by service and method', () => {
    expect([...commandSpecs(modules).keys()].sort()).toEqual([
      ...['ReceiveStock', 'ReleaseReservation', 'ReserveStock'].map((m) => `shardwrite.v1.InventoryService/${m}`),
      ...[
        'AddOrderLine',
        'AddOrderLines',
        'AuthorizePayment',
        'CancelOrder',
        'CapturePayment',
        'MarkPaymentCaptured',
        'PlaceOrder',
        'RefundPayment',
        'RemoveOrderLine',
        'ShipOrder',
        'UpdateShippingAddress',
      ].map((m) => `shardwrite.v1.OrderService/${m}`),
      ...['CompleteProcessStep', 'RecordProcessInput', 'RetryProcess'].map((m) => `shardwrite.v1.ProcessManagerService/${m}`),
    ]);
  });

  it('refuses two deciders for the same aggregate type', () => {
    const twin: DomainModule = { service: 'shardwrite.v1.Other', deciders: [orders.deciders[0]!], commands: [] };
    expectThrow(() => deciderRegistry([orders, twin]), /order-header is registered twice/);
  });

  it('refuses the same method registered twice', () => {
    expectThrow(() => commandSpecs([orders, orders]), /PlaceOrder is registered twice/);
  });

  it('refuses a command whose aggregate type no decider of its module handles', () => {
    const orphan: DomainModule = { ...orders, deciders: orders.deciders.filter((d) => d.aggregateType !== 'order-payment') };
    expectThrow(() => commandSpecs([orphan]), /targets order-payment/);
  });
});

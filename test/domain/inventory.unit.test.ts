import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AggregateNotFoundError, BusinessRuleError, ValidationError } from '../../src/errors.js';
import {
  INVENTORY,
  MAX_ACTIVE_RESERVATIONS,
  MAX_UNITS_ON_HAND,
  MAX_UNITS_PER_COMMAND,
  available,
  inventory,
  stock as decider,
  type InventoryEvent,
  type ReceiveStock,
  type ReleaseReservation,
  type ReserveStock,
  type StockReceived,
  type StockReserved,
} from '../../src/domain/inventory/index.js';
import { AT, command, spec, stateAfter } from './support.js';

const receive = (quantity: number) => command<ReceiveStock>('ReceiveStock', { quantity });
const reserve = (orderId: string, quantity: number) => command<ReserveStock>('ReserveStock', { orderId, quantity });
const release = (orderId: string) => command<ReleaseReservation>('ReleaseReservation', { orderId });
const received = (quantity: number): StockReceived => ({ type: 'StockReceived', data: { quantity, receivedAt: AT } });
const reserved = (orderId: string, quantity: number): StockReserved => ({ type: 'StockReserved', data: { orderId, quantity, reservedAt: AT } });
const released = (orderId: string, quantity: number): InventoryEvent => ({ type: 'ReservationReleased', data: { orderId, quantity, releasedAt: AT } });

const stock = spec(decider);

describe('inventory', () => {
  it('is the aggregate type `inventory`, state schema 1, no upcasters and no personal data', () => {
    expect(decider.aggregateType).toBe(INVENTORY);
    expect(decider.stateSchemaVersion).toBe(1);
    expect(decider.upcasters).toEqual({});
    expect(decider.personalData).toBeUndefined();
  });

  describe('ReceiveStock', () => {
    it('receives stock on a new SKU, creating it', () => {
      stock
        .given([])
        .when(receive(10))
        .then([received(10)]);
    });

    it('adds to what is on hand', () => {
      const state = stateAfter(decider, [received(10), received(5)]);
      expect(state).toMatchObject({ created: true, onHand: 15, reserved: 0 });
      expect(available(state)).toBe(15);
    });

    it(`refuses to hold more than ${MAX_UNITS_ON_HAND} units on hand`, () => {
      const full = Array.from({ length: MAX_UNITS_ON_HAND / MAX_UNITS_PER_COMMAND }, () => received(MAX_UNITS_PER_COMMAND));
      stock
        .given(full)
        .when(receive(1))
        .thenThrows(BusinessRuleError, /at most/);
    });
  });

  describe('ReserveStock', () => {
    it('reserves what is available', () => {
      stock
        .given([received(10)])
        .when(reserve('o1', 10))
        .then([reserved('o1', 10)]);
    });

    it('never lets the available quantity go below zero', () => {
      stock
        .given([received(10), reserved('o1', 7)])
        .when(reserve('o2', 4))
        .thenThrows(BusinessRuleError, /only 3 available/);
    });

    it('refuses a second reservation of the same order', () => {
      stock
        .given([received(10), reserved('o1', 2)])
        .when(reserve('o1', 1))
        .thenThrows(BusinessRuleError, /already holds/);
    });

    it('is NOT_FOUND on a SKU that never received stock', () => {
      stock.given([]).when(reserve('o1', 1)).thenThrows(AggregateNotFoundError);
    });

    it('reserves again what a release made available', () => {
      stock
        .given([received(5), reserved('o1', 5), released('o1', 5)])
        .when(reserve('o2', 5))
        .then([reserved('o2', 5)]);
    });

    it(`holds at most ${MAX_ACTIVE_RESERVATIONS} active reservations`, () => {
      const many = Array.from({ length: MAX_ACTIVE_RESERVATIONS }, (_, i) => reserved(`o${i}`, 1));
      stock
        .given([received(MAX_ACTIVE_RESERVATIONS + 1), ...many])
        .when(reserve('one-more', 1))
        .thenThrows(BusinessRuleError, /active reservations/);
    });

    it('keeps order ids that are names of Object.prototype members apart from the prototype', () => {
      stock
        .given([received(3)])
        .when(reserve('__proto__', 1))
        .then([reserved('__proto__', 1)]);
      stock
        .given([received(3)])
        .when(release('constructor'))
        .thenThrows(BusinessRuleError, /holds no reservation/);
      const state = stateAfter(decider, [received(3), reserved('__proto__', 1), reserved('constructor', 2)]);
      expect(available(state)).toBe(0);
      expect(Object.getPrototypeOf(state.reservations)).toBe(Object.prototype);
      stock
        .given([received(3), reserved('__proto__', 1)])
        .when(release('__proto__'))
        .then([released('__proto__', 1)]);
    });
  });

  describe('ReleaseReservation', () => {
    it('releases exactly what the order reserved', () => {
      stock
        .given([received(10), reserved('o1', 4)])
        .when(release('o1'))
        .then([released('o1', 4)]);
      const state = stateAfter(decider, [received(10), reserved('o1', 4), released('o1', 4)]);
      expect(state).toMatchObject({ onHand: 10, reserved: 0, reservations: {} });
    });

    it('releases only what was reserved: an order without a reservation is refused', () => {
      stock
        .given([received(10), reserved('o1', 4)])
        .when(release('o2'))
        .thenThrows(BusinessRuleError, /holds no reservation/);
    });

    it('releases a reservation once', () => {
      stock
        .given([received(10), reserved('o1', 4), released('o1', 4)])
        .when(release('o1'))
        .thenThrows(BusinessRuleError, /holds no reservation/);
    });

    it('is NOT_FOUND on a SKU that never received stock', () => {
      stock.given([]).when(release('o1')).thenThrows(AggregateNotFoundError);
    });
  });

  it('keeps available ≥ 0 and reserved = the sum of active reservations over any sequence of commands', () => {
    const cmd = fc.oneof(
      fc.integer({ min: 1, max: 20 }).map(receive),
      fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 30 })).map(([o, q]) => reserve(o, q)),
      fc.constantFrom('a', 'b', 'c', 'd').map(release),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 60 }), (commands) => {
        let state = decider.initialState();
        for (const c of commands) {
          let events: InventoryEvent[];
          try {
            events = decider.decide(c, state);
          } catch (err) {
            if (err instanceof BusinessRuleError || err instanceof AggregateNotFoundError) continue;
            throw err;
          }
          for (const e of events) state = decider.evolve(state, e);
          expect(available(state)).toBeGreaterThanOrEqual(0);
          expect(state.reserved).toBe(Object.values(state.reservations).reduce((a: number, b: number) => a + b, 0));
        }
      }),
    );
  });
});

describe('InventoryService requests', () => {
  const specOf = (method: string) => inventory.commands.find((c) => c.method === method)!;
  const violations = (method: string, request: object) => {
    try {
      specOf(method).toCommand(request);
    } catch (err) {
      if (err instanceof ValidationError) return err.violations.map((v) => v.field);
      throw err;
    }
    return [];
  };

  it('routes every command by sku onto the inventory aggregate', () => {
    expect(inventory.service).toBe('shardwrite.v1.InventoryService');
    expect(specOf('ReserveStock').toCommand({ sku: 'SKU-1', orderId: 'o1', quantity: 2, commandId: 'c1', expectedVersion: '3' })).toEqual({
      aggregateType: 'inventory',
      aggregateId: 'SKU-1',
      commandId: 'c1',
      expectedVersion: 3,
      command: { type: 'ReserveStock', data: { orderId: 'o1', quantity: 2 } },
    });
  });

  it('requires a command id on ReceiveStock: a retried receipt must never count twice', () => {
    expect(violations('ReceiveStock', { sku: 'S', quantity: 1 })).toEqual(['command_id']);
    expect(violations('ReceiveStock', { sku: 'S', quantity: 1, commandId: 'c' })).toEqual([]);
  });

  it('reports every bad field at once', () => {
    expect(violations('ReserveStock', { sku: '', orderId: 'bad id', quantity: 0, expectedVersion: '-1' })).toEqual(['sku', 'expected_version', 'order_id', 'quantity']);
    expect(violations('ReceiveStock', { sku: 'S', commandId: 'c', quantity: MAX_UNITS_PER_COMMAND + 1 })).toEqual(['quantity']);
    expect(violations('ReceiveStock', { sku: 'S', commandId: 'c', quantity: 1.5 })).toEqual(['quantity']);
    expect(violations('ReleaseReservation', { sku: 'x'.repeat(129), orderId: '' })).toEqual(['sku', 'order_id']);
  });

  it('reads only own fields: a field supplied through the prototype does not count', () => {
    const request = Object.create({ sku: 'SKU-1', orderId: 'o1' }) as object;
    expect(violations('ReleaseReservation', request)).toEqual(['sku', 'order_id']);
  });
});

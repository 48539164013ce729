import { describe, expect, it } from 'vitest';
import { AggregateNotFoundError, BusinessRuleError, ValidationError } from '../../src/errors.js';
import {
  MAX_ORDER_LINES,
  orderLines,
  upcastOrderLineAddedV1,
  type AddOrderLine,
  type AddOrderLines,
  type OrderLineAdded,
  type OrderLineRemoved,
  type RemoveOrderLine,
} from '../../src/domain/orders/lines.js';
import { commandSpecs, modules } from '../../src/domain/index.js';
import { command, spec, stateAfter } from './support.js';
import { expectThrow } from '../support/expect-error.js';

const add = (lineId: string, quantity = 2, unitPriceCents = 1_250, sku = 'SKU-1') => command<AddOrderLine>('AddOrderLine', { lineId, sku, quantity, unitPriceCents });
const remove = (lineId: string) => command<RemoveOrderLine>('RemoveOrderLine', { lineId });
const added = (lineId: string, quantity = 2, unitPriceCents = 1_250, sku = 'SKU-1'): OrderLineAdded => ({
  type: 'OrderLineAdded',
  data: { lineId, sku, quantity, unitPriceCents, lineTotalCents: quantity * unitPriceCents },
});
const removed = (lineId: string): OrderLineRemoved => ({ type: 'OrderLineRemoved', data: { lineId } });
const linesAdded = (n: number) => Array.from({ length: n }, (_, i) => added(`l-${i}`));

const lines = spec(orderLines);

describe('order-lines', () => {
  describe('AddOrderLines', () => {
    const addMany = (...ids: string[]) => command<AddOrderLines>('AddOrderLines', { lines: ids.map((lineId) => ({ lineId, sku: 'SKU-1', quantity: 2, unitPriceCents: 1_250 })) });

    it('emits one OrderLineAdded per line, in the command’s order', () => {
      lines
        .given([])
        .when(addMany('a', 'b', 'c'))
        .then([added('a'), added('b'), added('c')]);
    });

    it('adds to the lines the order has', () => {
      lines
        .given([added('x'), removed('x'), added('y')])
        .when(addMany('x', 'z'))
        .then([added('x'), added('z')]);
    });

    it('refuses the whole command when one line’s id is taken: no line is added', () => {
      lines
        .given([added('b')])
        .when(addMany('a', 'b', 'c'))
        .thenThrows(BusinessRuleError, /already has a line b/);
    });

    it('refuses the whole command when its lines would take the order past 100', () => {
      lines
        .given(linesAdded(MAX_ORDER_LINES - 2))
        .when(addMany('n1', 'n2'))
        .then([added('n1'), added('n2')]);
      lines
        .given(linesAdded(MAX_ORDER_LINES - 2))
        .when(addMany('n1', 'n2', 'n3'))
        .thenThrows(BusinessRuleError, /at most 100 lines/);
    });

    it('refuses a command without lines (a caller bypassing validation)', () => {
      lines
        .given([])
        .when(addMany())
        .thenThrows(BusinessRuleError, /adds no lines/);
    });

    it('evolves to a state with every line', () => {
      expect(stateAfter(orderLines, [added('a'), added('b')]).lines.map((l) => l.lineId)).toEqual(['a', 'b']);
    });
  });

  describe('AddOrderLine', () => {
    it('creates the lines stream with its first line, computing the line total', () => {
      lines
        .given([])
        .when(add('l-1', 3, 999))
        .then([{ type: 'OrderLineAdded', data: { lineId: 'l-1', sku: 'SKU-1', quantity: 3, unitPriceCents: 999, lineTotalCents: 2_997 } }]);
    });

    it('accepts a free line (price 0)', () => {
      lines
        .given([])
        .when(add('l-1', 1, 0))
        .then([added('l-1', 1, 0)]);
    });

    it('refuses a line id the order already has', () => {
      lines
        .given([added('l-1')])
        .when(add('l-1', 5, 100, 'OTHER'))
        .thenThrows(BusinessRuleError, /already has a line l-1/);
    });

    it('accepts a line id again once that line was removed', () => {
      lines
        .given([added('l-1'), removed('l-1')])
        .when(add('l-1'))
        .then([added('l-1')]);
    });

    it('accepts the 100th line', () => {
      lines
        .given(linesAdded(MAX_ORDER_LINES - 1))
        .when(add('last'))
        .then([added('last')]);
    });

    it('refuses the 101st line', () => {
      expect(MAX_ORDER_LINES).toBe(100);
      lines
        .given(linesAdded(100))
        .when(add('l-100'))
        .thenThrows(BusinessRuleError, /at most 100 lines/);
    });

    it('accepts a line again after one of 100 lines was removed', () => {
      lines
        .given([...linesAdded(100), removed('l-42')])
        .when(add('l-100'))
        .then([added('l-100')]);
    });

    it('refuses a line whose total would not be an exact number', () => {
      lines
        .given([])
        .when(add('l-1', 10_000, 2 ** 52))
        .thenThrows(BusinessRuleError, /too large/);
    });
  });

  describe('RemoveOrderLine', () => {
    it('is refused as not found on a stream with no events', () => {
      lines.given([]).when(remove('l-1')).thenThrows(AggregateNotFoundError);
    });

    it('removes an existing line', () => {
      lines
        .given([added('l-1'), added('l-2')])
        .when(remove('l-1'))
        .then([removed('l-1')]);
    });

    it('refuses to remove a line the order does not have', () => {
      lines
        .given([added('l-1')])
        .when(remove('l-9'))
        .thenThrows(BusinessRuleError, /no line l-9/);
    });

    it('refuses to remove a line twice, even when the order has no lines left', () => {
      lines
        .given([added('l-1'), removed('l-1')])
        .when(remove('l-1'))
        .thenThrows(BusinessRuleError);
    });
  });

  describe('quantity bounds (checked when the request becomes a command)', () => {
    const toCommand = (quantity: unknown) =>
      commandSpecs(modules).get('shardwrite.v1.OrderService/AddOrderLine')!.toCommand({ orderId: 'o-1', commandId: '', lineId: 'l-1', sku: 'SKU-1', quantity, unitPriceCents: '100' });

    it.each([1, 10_000])('accepts quantity %d', (quantity) => {
      expect(toCommand(quantity).command.data).toMatchObject({ quantity });
    });

    it.each([0, -1, 10_001, 1.5, '3'])('refuses quantity %j', (quantity) => {
      expectThrow(() => toCommand(quantity), ValidationError);
      try {
        toCommand(quantity);
      } catch (err) {
        expect((err as ValidationError).violations.map((v) => v.field)).toEqual(['quantity']);
      }
    });
  });

  describe('event schema', () => {
    it('declares OrderLineAdded at schema version 2 with an upcaster from version 1', () => {
      expect(orderLines.eventSchemaVersions).toEqual({ OrderLineAdded: 2 });
      expect(orderLines.upcasters.OrderLineAdded?.[1]).toBe(upcastOrderLineAddedV1);
    });

    it('upcasts a stored v1 OrderLineAdded by computing lineTotalCents', () => {
      const v1 = { lineId: 'l-1', sku: 'SKU-1', quantity: 3, unitPriceCents: 1_999 };
      expect(orderLines.upcasters.OrderLineAdded![1]!(v1)).toStrictEqual({ ...v1, lineTotalCents: 5_997 });
    });

    it('evolves upcast v1 events into the same state as v2 events', () => {
      const storedV1 = [
        { lineId: 'l-1', sku: 'SKU-1', quantity: 3, unitPriceCents: 1_999 },
        { lineId: 'l-2', sku: 'SKU-2', quantity: 1, unitPriceCents: 500 },
      ];
      const upcast = storedV1.map((data): OrderLineAdded => ({ type: 'OrderLineAdded', data: upcastOrderLineAddedV1(data) }));
      const state = stateAfter(orderLines, upcast);
      expect(state).toStrictEqual({
        created: true,
        lines: [
          { lineId: 'l-1', sku: 'SKU-1', quantity: 3, unitPriceCents: 1_999, lineTotalCents: 5_997 },
          { lineId: 'l-2', sku: 'SKU-2', quantity: 1, unitPriceCents: 500, lineTotalCents: 500 },
        ],
      });
      expect(state).toStrictEqual(stateAfter(orderLines, [added('l-1', 3, 1_999), added('l-2', 1, 500, 'SKU-2')]));
    });

    it('refuses to upcast a payload that is not a v1 line', () => {
      expectThrow(() => upcastOrderLineAddedV1(null), /not an object/);
      expectThrow(() => upcastOrderLineAddedV1({ lineId: 'l-1', sku: 'S', quantity: '3', unitPriceCents: 1 }), /lacks/);
    });
  });

  describe('state', () => {
    it('keeps the current lines in the order they were added', () => {
      expect(stateAfter(orderLines, [added('a'), added('b'), added('c'), removed('b')]).lines.map((l) => l.lineId)).toEqual(['a', 'c']);
    });

    it('remembers that the stream exists after its last line was removed', () => {
      expect(stateAfter(orderLines, [added('a'), removed('a')])).toStrictEqual({ created: true, lines: [] });
    });
  });
});

/**
 * `order-lines`: what an order contains. The stream is created by its first
 * `AddOrderLine`; it cannot ask `order-header` whether the order exists,
 * because aggregates never read each other (each decides alone, on one
 * stream, which is what lets a shard append them without coordination).
 */
import type { Command, Decider, DomainEvent } from '../decider.js';
import { ORDER_HEADER } from './header.js';
import { AggregateNotFoundError, BusinessRuleError } from '../../errors.js';

/** The aggregate type; streams are `order-lines-<order id>`. */
export const ORDER_LINES = 'order-lines';
/** An order holds at most this many lines at a time. */
export const MAX_ORDER_LINES = 100;
/** Lines one `AddOrderLines` command adds at most. */
export const MAX_LINES_PER_COMMAND = 20;

export type AddOrderLine = Command<'AddOrderLine', { readonly lineId: string; readonly sku: string; readonly quantity: number; readonly unitPriceCents: number }>;
export type RemoveOrderLine = Command<'RemoveOrderLine', { readonly lineId: string }>;
/** Several lines at once: one `OrderLineAdded` per line, appended together or not at all (I3). */
export type AddOrderLines = Command<'AddOrderLines', { readonly lines: readonly AddOrderLine['data'][] }>;
/** Every command `order-lines` decides. */
export type OrderLinesCommand = AddOrderLine | RemoveOrderLine | AddOrderLines;

/** One line of an order; also the payload of `OrderLineAdded` (schema version 2). */
export interface OrderLine {
  readonly lineId: string;
  readonly sku: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
  /** `quantity * unitPriceCents`, fixed when the line was added. */
  readonly lineTotalCents: number;
}

/** Schema version 2. Version 1 (older releases) had no `lineTotalCents`; see `upcastOrderLineAddedV1`. */
export type OrderLineAdded = DomainEvent<'OrderLineAdded', OrderLine>;
export type OrderLineRemoved = DomainEvent<'OrderLineRemoved', { readonly lineId: string }>;
/** Every event `order-lines` emits. */
export type OrderLinesEvent = OrderLineAdded | OrderLineRemoved;

/**
 * `created` tells an empty order (all lines removed) from a stream that has
 * no events; `lines` keeps insertion order. Plain JSON.
 */
export interface OrderLinesState {
  readonly created: boolean;
  readonly lines: readonly OrderLine[];
}

/**
 * Turns a stored version-1 `OrderLineAdded` payload `{ lineId, sku, quantity,
 * unitPriceCents }` into version 2 by adding `lineTotalCents`. Throws a plain
 * `Error` on a payload that is not a version-1 line: the stream is corrupt and
 * must not be decided on.
 */
export function upcastOrderLineAddedV1(data: unknown): OrderLine {
  if (typeof data !== 'object' || data === null) throw new Error('OrderLineAdded v1: payload is not an object');
  const { lineId, sku, quantity, unitPriceCents } = data as Record<string, unknown>;
  if (typeof lineId !== 'string' || typeof sku !== 'string' || !Number.isSafeInteger(quantity) || !Number.isSafeInteger(unitPriceCents)) {
    throw new Error('OrderLineAdded v1: payload lacks lineId, sku, quantity or unitPriceCents');
  }
  const q = quantity as number;
  const p = unitPriceCents as number;
  return { lineId, sku, quantity: q, unitPriceCents: p, lineTotalCents: q * p };
}

/** The event adding `line` to an order that holds `lines`; BusinessRuleError when a rule refuses it. */
function addLine(lines: readonly OrderLine[], line: AddOrderLine['data']): OrderLineAdded {
  const { lineId, sku, quantity, unitPriceCents } = line;
  if (lines.some((l) => l.lineId === lineId)) {
    throw new BusinessRuleError(`the order already has a line ${lineId}`);
  }
  if (lines.length >= MAX_ORDER_LINES) {
    throw new BusinessRuleError(`an order has at most ${MAX_ORDER_LINES} lines`);
  }
  const lineTotalCents = quantity * unitPriceCents;
  // Validation bounds the product; this guards callers that bypass it,
  // since an unsafe total would be stored with lost precision.
  if (!Number.isSafeInteger(lineTotalCents)) throw new BusinessRuleError('the line total is too large');
  return { type: 'OrderLineAdded', data: { lineId, sku, quantity, unitPriceCents, lineTotalCents } };
}

/**
 * The `order-lines` decider.
 *
 * - `AddOrderLine` → `OrderLineAdded` (v2); refused (BusinessRuleError) when
 *   the order already has `MAX_ORDER_LINES` lines or a line with that id.
 * - `RemoveOrderLine` → `OrderLineRemoved`; `AggregateNotFoundError` on a
 *   stream with no events, BusinessRuleError for an unknown line.
 * - `AddOrderLines` → one `OrderLineAdded` per line, in the command's order;
 *   refused whole when any line would be refused as an `AddOrderLine` after
 *   the ones before it (a repeated line id, more than `MAX_ORDER_LINES`).
 *
 * Line ids are unique among the current lines: a removed id may be added again.
 */
export const orderLines: Decider<OrderLinesCommand, OrderLinesEvent, OrderLinesState> = {
  aggregateType: ORDER_LINES,
  tenantFrom: ORDER_HEADER,
  stateSchemaVersion: 1,
  eventSchemaVersions: { OrderLineAdded: 2 },
  upcasters: { OrderLineAdded: { 1: upcastOrderLineAddedV1 } },

  initialState: () => ({ created: false, lines: [] }),

  decide(command, state) {
    switch (command.type) {
      case 'AddOrderLine':
        return [addLine(state.lines, command.data)];
      case 'AddOrderLines': {
        if (command.data.lines.length === 0) throw new BusinessRuleError('the command adds no lines');
        // Each line is decided on the lines as the ones before it leave them.
        const events: OrderLineAdded[] = [];
        let lines = state.lines;
        for (const line of command.data.lines) {
          const event = addLine(lines, line);
          events.push(event);
          lines = [...lines, event.data];
        }
        return events;
      }
      case 'RemoveOrderLine': {
        if (!state.created) throw new AggregateNotFoundError('the order has no lines');
        const { lineId } = command.data;
        if (!state.lines.some((l) => l.lineId === lineId)) {
          throw new BusinessRuleError(`the order has no line ${lineId}`);
        }
        return [{ type: 'OrderLineRemoved', data: { lineId } }];
      }
      default:
        throw new Error(`order-lines cannot decide ${(command as { type: string }).type}`);
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'OrderLineAdded': {
        const { lineId, sku, quantity, unitPriceCents, lineTotalCents } = event.data;
        return { created: true, lines: [...state.lines, { lineId, sku, quantity, unitPriceCents, lineTotalCents }] };
      }
      case 'OrderLineRemoved':
        return { created: true, lines: state.lines.filter((l) => l.lineId !== event.data.lineId) };
      default:
        return state;
    }
  },
};

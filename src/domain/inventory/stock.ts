/**
 * `inventory`: the stock of one SKU — what was received, and what is
 * reserved for orders. Its invariant: the available quantity (on hand minus
 * reserved) is never below zero. Every reservation of a busy SKU lands on
 * this one stream: a hot aggregate, decided one command after another by its
 * owning shard.
 */
import type { Command, Decider, DomainEvent } from '../decider.js';
import { AggregateNotFoundError, BusinessRuleError } from '../../errors.js';

/** The aggregate type; streams are `inventory-<sku>`. */
export const INVENTORY = 'inventory';
/** Units one command receives or reserves at most. */
export const MAX_UNITS_PER_COMMAND = 1_000_000;
/** Units a SKU holds on hand at most (keeps every sum an exact integer). */
export const MAX_UNITS_ON_HAND = 1_000_000_000;
/** Orders holding a reservation on one SKU at a time, at most (bounds the state). */
export const MAX_ACTIVE_RESERVATIONS = 1_000;

export type ReceiveStock = Command<'ReceiveStock', { readonly quantity: number }>;
/** Reserves `quantity` units for `orderId`: one reservation per order and SKU. */
export type ReserveStock = Command<'ReserveStock', { readonly orderId: string; readonly quantity: number }>;
/** Releases the whole reservation `orderId` holds. */
export type ReleaseReservation = Command<'ReleaseReservation', { readonly orderId: string }>;
/** Every command `inventory` decides. */
export type InventoryCommand = ReceiveStock | ReserveStock | ReleaseReservation;

export type StockReceived = DomainEvent<'StockReceived', { readonly quantity: number; readonly receivedAt: string }>;
export type StockReserved = DomainEvent<'StockReserved', { readonly orderId: string; readonly quantity: number; readonly reservedAt: string }>;
/** `quantity` is what the reservation held: it is available again. */
export type ReservationReleased = DomainEvent<'ReservationReleased', { readonly orderId: string; readonly quantity: number; readonly releasedAt: string }>;
/** Every event `inventory` emits (all at schema version 1). */
export type InventoryEvent = StockReceived | StockReserved | ReservationReleased;

/**
 * `created` tells a SKU that never received stock from one with nothing left;
 * `reservations` holds the active reservations' units by order id. Plain JSON.
 */
export interface InventoryState {
  readonly created: boolean;
  readonly onHand: number;
  readonly reserved: number;
  readonly reservations: Readonly<Record<string, number>>;
}

/** Units that can still be reserved: never below zero. */
export function available(state: InventoryState): number {
  return state.onHand - state.reserved;
}

/**
 * The `inventory` decider (`stock`).
 *
 * - `ReceiveStock` → `StockReceived`; creates the SKU. Refused
 *   (BusinessRuleError) past `MAX_UNITS_ON_HAND`.
 * - `ReserveStock` → `StockReserved`; refused when fewer units are available
 *   than asked for (available never goes below zero), when the order already
 *   holds a reservation, or past `MAX_ACTIVE_RESERVATIONS`.
 * - `ReleaseReservation` → `ReservationReleased` of what the order reserved;
 *   refused when the order holds no reservation (only what was reserved is
 *   released, and only once).
 *
 * `ReserveStock` and `ReleaseReservation` on a SKU that never received stock
 * throw `AggregateNotFoundError`.
 */
export const stock: Decider<InventoryCommand, InventoryEvent, InventoryState> = {
  aggregateType: INVENTORY,
  stateSchemaVersion: 1,
  eventSchemaVersions: {},
  upcasters: {},

  initialState: () => ({ created: false, onHand: 0, reserved: 0, reservations: {} }),

  decide(command, state) {
    const at = command.context.at;
    if (command.type === 'ReceiveStock') {
      const { quantity } = command.data;
      if (state.onHand + quantity > MAX_UNITS_ON_HAND) throw new BusinessRuleError(`a SKU holds at most ${MAX_UNITS_ON_HAND} units on hand`);
      return [{ type: 'StockReceived', data: { quantity, receivedAt: at } }];
    }
    if (!state.created) throw new AggregateNotFoundError('the SKU has never received stock');
    const { orderId } = command.data;
    const held = Object.hasOwn(state.reservations, orderId) ? state.reservations[orderId] : undefined;
    switch (command.type) {
      case 'ReserveStock': {
        const { quantity } = command.data;
        if (held !== undefined) throw new BusinessRuleError(`order ${orderId} already holds a reservation of this SKU`);
        if (quantity > available(state)) throw new BusinessRuleError(`cannot reserve ${quantity}: only ${available(state)} available`);
        if (Object.keys(state.reservations).length >= MAX_ACTIVE_RESERVATIONS) {
          throw new BusinessRuleError(`a SKU holds at most ${MAX_ACTIVE_RESERVATIONS} active reservations`);
        }
        return [{ type: 'StockReserved', data: { orderId, quantity, reservedAt: at } }];
      }
      case 'ReleaseReservation':
        if (held === undefined) throw new BusinessRuleError(`order ${orderId} holds no reservation of this SKU`);
        return [{ type: 'ReservationReleased', data: { orderId, quantity: held, releasedAt: at } }];
      default:
        throw new Error(`inventory cannot decide ${(command as { type: string }).type}`);
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'StockReceived':
        return { ...state, created: true, onHand: state.onHand + event.data.quantity };
      case 'StockReserved':
        return {
          ...state,
          reserved: state.reserved + event.data.quantity,
          reservations: { ...state.reservations, [event.data.orderId]: event.data.quantity },
        };
      case 'ReservationReleased': {
        // A stored stream is the truth: a release without its reservation can
        // only come from a hand-edited stream and is ignored rather than fatal.
        if (!Object.hasOwn(state.reservations, event.data.orderId)) return state;
        const { [event.data.orderId]: released = 0, ...rest } = state.reservations;
        return { ...state, reserved: state.reserved - released, reservations: rest };
      }
      default:
        return state;
    }
  },
};

/**
 * The instance runtime with definitions other than order fulfilment: one over
 * the second domain (inventory), written and registered like order
 * fulfilment, and one whose own code throws.
 */
import { describe, expect, it } from 'vitest';
import { INVENTORY } from '../../src/domain/inventory/index.js';
import { commandSpecs, deciderRegistry, modules } from '../../src/domain/index.js';
import {
  defineProcessManager,
  instanceDecider,
  orderFulfilment,
  processManagerModule,
  stepCommandId,
  type AnyProcessManager,
  type InstanceCommand,
  type InstanceEvent,
  type InstanceState,
  type Parked,
  type PmRecordedInput,
  type StepDecided,
} from '../../src/process-managers/index.js';

const AT = '2026-01-01T00:00:00.000Z';
const INVENTORY_SERVICE = 'shardwrite.v1.InventoryService';

interface RestockState {
  readonly sku: string;
  readonly available: number;
  /** A ReceiveStock was sent and its stock has not arrived yet. */
  readonly restockSent: boolean;
  readonly restocks: number;
}

/** The definition's bug: it throws on an input whose data says `poison` while this is set ("fixed" by clearing it). */
let poisonThrows = true;

/**
 * Restocking, a process manager of the inventory domain: when a SKU's
 * available stock reaches zero, receive `restockUnits` more. Sends
 * InventoryService's ReceiveStock by service and RPC name.
 */
const restock = defineProcessManager<RestockState, { restockUnits: number }>({
  name: 'restock',
  sources: { aggregateTypes: [INVENTORY], eventTypes: ['StockReceived', 'StockReserved', 'ReservationReleased'] },
  startsWith: ['StockReceived'],
  correlate: (e) => (e.aggregateType === INVENTORY ? e.aggregateId : undefined),
  catchUpStreams: (sku) => [{ aggregateType: INVENTORY, aggregateId: sku }],
  readSettings: () => ({ restockUnits: 10 }),
  settingsEnv: [],
  stateSchemaVersion: 1,
  initialState: () => ({ sku: '', available: 0, restockSent: false, restocks: 0 }),
  evolve(state, input) {
    if (input.kind === 'sent') return input.service === INVENTORY_SERVICE && input.method === 'ReceiveStock' ? { ...state, restockSent: true, restocks: state.restocks + 1 } : state;
    if (input.kind !== 'event') return state;
    const data = input.data as { quantity: number; poison?: boolean };
    if (data.poison && poisonThrows) throw new Error('cannot read this event');
    const sku = input.sourceStreamId.slice(`${INVENTORY}-`.length);
    switch (input.type) {
      case 'StockReceived':
        return { ...state, sku, available: state.available + data.quantity, restockSent: false };
      case 'StockReserved':
        return { ...state, sku, available: state.available - data.quantity };
      case 'ReservationReleased':
        return { ...state, sku, available: state.available + data.quantity };
      default:
        return state;
    }
  },
  decide(state, { settings }) {
    // One restock per time the stock ran out.
    if (state.available > 0 || state.restockSent) return {};
    return { commands: [{ service: INVENTORY_SERVICE, method: 'ReceiveStock', request: { sku: state.sku, quantity: settings.restockUnits } }] };
  },
  isComplete: () => false,
});

/** An instance driven command by command, every decision folded as the pipeline would. */
function instanceOf(definition: AnyProcessManager, streamId: string) {
  const decider = instanceDecider(definition);
  let state: InstanceState = decider.initialState();
  const run = (type: InstanceCommand['type'], data: Record<string, unknown>): InstanceEvent[] => {
    const events = decider.decide({ type, data: { streamId, ...data }, context: { at: AT } } as InstanceCommand, state);
    for (const e of events) state = decider.evolve(state, e);
    return events;
  };
  return {
    get state() {
      return state;
    },
    run,
    input(inputId: string, type: string, data: unknown, source: string) {
      const input: PmRecordedInput = { kind: 'event', inputId, type, data, sourceStreamId: source, sourceVersion: 1 };
      return run('RecordProcessInput', { input, settings: { restockUnits: 10 } });
    },
  };
}

const types = (events: InstanceEvent[]) => events.map((e) => e.type);
const steps = (events: InstanceEvent[]) => events.filter((e): e is StepDecided => e.type === 'StepDecided');

describe('a process manager of the inventory domain', () => {
  it("sends that domain's command by service and RPC name, with a command id derived from instance, input and step", () => {
    const stream = 'pm-restock-sku-1';
    const pm = instanceOf(restock, stream);
    expect(steps(pm.input('e1', 'StockReceived', { quantity: 2 }, 'inventory-sku-1'))).toEqual([]);
    const out = pm.input('e2', 'StockReserved', { quantity: 2, orderId: 'o1' }, 'inventory-sku-1');
    expect(steps(out).map((s) => s.data.commands)).toEqual([
      [{ service: INVENTORY_SERVICE, method: 'ReceiveStock', request: { sku: 'sku-1', quantity: 10 }, commandId: stepCommandId(stream, 'e2', 1, 0), tolerateRejection: false }],
    ]);
    // The definition was told what it sent, by service and method: it does not send it again.
    expect(steps(pm.run('CompleteProcessStep', { step: 1, attempt: 1, failure: '', rejected: [] }))).toEqual([]);
    expect(pm.state.pm).toMatchObject({ restocks: 1 });
  });

  it('is registered beside order fulfilment by the list alone: its instances become an aggregate type, its RPCs route to it', () => {
    const module = processManagerModule([orderFulfilment, restock])!;
    const all = [...modules.filter((m) => m.service !== module.service), module];
    expect(deciderRegistry(all).has('pm-restock')).toBe(true);
    const routed = commandSpecs(all).get('shardwrite.v1.ProcessManagerService/RetryProcess')!.toCommand({ processManager: 'restock', instanceId: 'sku-1' });
    expect(routed).toMatchObject({ aggregateType: 'pm-restock', aggregateId: 'sku-1', command: { data: { streamId: 'pm-restock-sku-1' } } });
  });
});

describe('a definition whose own code throws', () => {
  it('parks its instance on the input instead of failing the command, keeps later inputs waiting, and applies them in order once a retry succeeds', () => {
    poisonThrows = true;
    const pm = instanceOf(restock, 'pm-restock-sku-2');
    pm.input('e1', 'StockReceived', { quantity: 5 }, 'inventory-sku-2');
    // Recorded and parked: the worker gets an answer (and acknowledges) instead of an error it would retry forever.
    const poisoned = pm.input('e2', 'StockReserved', { quantity: 5, poison: true }, 'inventory-sku-2');
    expect(poisoned.map((e) => [e.type, e.data.status])).toEqual([
      ['InputRecorded', 'idle'],
      ['Parked', 'parked'],
    ]);
    expect((poisoned[1] as Parked).data.reason).toBe('restock evolve threw: cannot read this event (on input e2)');
    expect(types(pm.input('e3', 'StockReceived', { quantity: 1 }, 'inventory-sku-2'))).toEqual(['InputRecorded']);
    expect(pm.state.queue.map((i) => i.inputId)).toEqual(['e2', 'e3']);
    // Still broken: the retry parks it again, nothing applied.
    expect(types(pm.run('RetryProcess', {}))).toEqual(['Resumed', 'Parked']);
    expect(pm.state.queue.map((i) => i.inputId)).toEqual(['e2', 'e3']);
    // Fixed: the input it threw on is applied, then the one queued behind it, in order.
    poisonThrows = false;
    const resumed = pm.run('RetryProcess', {});
    expect(resumed.filter((e) => e.type === 'InputApplied').map((e) => (e.data as { inputId: string }).inputId)).toEqual(['e2']);
    expect(steps(resumed)[0]!.data.commands.map((c) => c.method)).toEqual(['ReceiveStock']);
    const drained = pm.run('CompleteProcessStep', { step: 1, attempt: 1, failure: '', rejected: [] });
    expect(drained.filter((e) => e.type === 'InputApplied').map((e) => (e.data as { inputId: string }).inputId)).toEqual(['e3']);
    expect(pm.state.pm).toMatchObject({ available: 1 });
  });

  it("parks with the step still in flight when it throws on the step's outcome, and a retry sends the same command ids", () => {
    const throwing = defineProcessManager({
      ...orderFulfilment,
      evolve: (state, input) => {
        if (input.kind === 'rejected') throw new Error('did not expect a refusal');
        return orderFulfilment.evolve(state, input);
      },
    });
    const stream = 'pm-order-fulfilment-o9';
    const pm = instanceOf(throwing, stream);
    const send = (inputId: string, type: string, source: string) =>
      pm.run('RecordProcessInput', { input: { kind: 'event', inputId, type, data: { amountCents: 100 }, sourceStreamId: `${source}-o9`, sourceVersion: 1 }, settings: { paymentTimeoutMs: 60_000 } });
    send('p', 'OrderPlaced', 'order-header');
    send('a', 'PaymentAuthorized', 'order-payment');
    const ids = steps(send('c', 'PaymentCaptured', 'order-payment'))[0]!.data.commands.map((c) => c.commandId);
    const step = pm.state.inFlight!.step;
    expect(types(pm.run('CompleteProcessStep', { step, attempt: 1, failure: '', rejected: [1] }))).toEqual(['Parked']);
    expect(pm.state.inFlight?.step).toBe(step);
    const retried = pm.run('RetryProcess', {});
    expect(steps(retried)[0]!.data).toMatchObject({ step, attempt: 2 });
    expect(steps(retried)[0]!.data.commands.map((c) => c.commandId)).toEqual(ids);
  });
});

import { describe, expect, it } from 'vitest';
import { BusinessRuleError } from '../../src/errors.js';
import { orderHeader, orderPayment } from '../../src/domain/orders/index.js';
import {
  INPUT_ALREADY_RECORDED,
  instanceDecider,
  orderFulfilment,
  processManagerModule,
  processManagers,
  type InstanceCommand,
  type InstanceEvent,
  type InstanceState,
  type PmRecordedInput,
  type StepDecided,
} from '../../src/process-managers/index.js';
import { commandSpecs, deciderRegistry, modules } from '../../src/domain/index.js';
import { expectThrow } from '../support/expect-error.js';

const decider = instanceDecider(orderFulfilment);
const STREAM = 'pm-order-fulfilment-o1';
const settings = { paymentTimeoutMs: 60_000 };
const AT = '2026-01-01T00:00:00.000Z';

/** An instance driven command by command; every decision is folded as the pipeline would. */
class Instance {
  state: InstanceState = decider.initialState();
  all: InstanceEvent[] = [];
  run(type: InstanceCommand['type'], data: Record<string, unknown>, at = AT): InstanceEvent[] {
    const command = { type, data: { streamId: STREAM, ...data }, context: { at } } as InstanceCommand;
    const events = decider.decide(command, this.state);
    for (const e of events) this.state = decider.evolve(this.state, e);
    this.all.push(...events);
    return events;
  }
  input(type: string, data: unknown, id = `e-${type}`, source = type.startsWith('Payment') ? 'order-payment-o1' : 'order-header-o1', at = AT) {
    const input: PmRecordedInput = { kind: 'event', inputId: id, type, data, sourceStreamId: source, sourceVersion: 1 };
    return this.run('RecordProcessInput', { input, settings }, at);
  }
  timeout(id: string, at = AT) {
    const input: PmRecordedInput = { kind: 'timeout', inputId: `timeout:${id}`, name: id.split(':')[0]! };
    return this.run('RecordProcessInput', { input, settings }, at);
  }
  complete(extra: Record<string, unknown> = {}) {
    const f = this.state.inFlight!;
    return this.run('CompleteProcessStep', { step: f.step, attempt: f.attempt, failure: '', rejected: [], ...extra });
  }
}

const steps = (events: InstanceEvent[]) => events.filter((e): e is StepDecided => e.type === 'StepDecided');
const methods = (events: InstanceEvent[]) => steps(events).flatMap((s) => s.data.commands.map((c) => c.method));

describe('order-fulfilment process manager', () => {
  it('arms the payment timeout when the order is placed, due after the configured time', () => {
    const pm = new Instance();
    const events = pm.input('OrderPlaced', {});
    expect(events.map((e) => e.type)).toEqual(['InputRecorded', 'InputApplied', 'StepDecided']);
    const [step] = steps(events);
    expect(step!.data.commands).toEqual([]);
    expect(step!.data.schedule).toEqual([{ name: 'payment', id: 'payment:1', dueAt: '2026-01-01T00:01:00.000Z' }]);
    // Nothing to send: the instance does not wait on this step, it waits on its timeout.
    expect(events.at(-1)!.data.status).toBe('waiting');
    expect(pm.state.inFlight).toBeUndefined();
    expect(pm.state.timeouts.payment?.dueAt).toBe('2026-01-01T00:01:00.000Z');
  });

  it('counts the payment timeout from when the order was placed, when the event says', () => {
    const pm = new Instance();
    const events = pm.input('OrderPlaced', { placedAt: '2025-12-31T23:59:30.000Z' });
    expect(steps(events)[0]!.data.schedule[0]!.dueAt).toBe('2026-01-01T00:00:30.000Z');
  });

  it('refuses an input it has already recorded, so a redelivered event changes nothing', () => {
    const pm = new Instance();
    pm.input('OrderPlaced', {});
    expectThrow(() => pm.input('OrderPlaced', {}), new BusinessRuleError(INPUT_ALREADY_RECORDED));
  });

  it('keeps inputs that arrive before the start event waiting, then applies the start event first', () => {
    const pm = new Instance();
    const first = pm.input('PaymentAuthorized', { amountCents: 100 });
    expect(first.map((e) => e.type)).toEqual(['InputRecorded']);
    expect(first[0]!.data.status).toBe('not-started');
    const placed = pm.input('OrderPlaced', {});
    // The start event is applied first (arming the timeout), then the authorization that waited (disarming it).
    expect(placed.map((e) => e.type)).toEqual(['InputRecorded', 'InputApplied', 'StepDecided', 'InputApplied', 'StepDecided']);
    expect((placed[1]!.data as { inputId: string }).inputId).toBe('e-OrderPlaced');
    expect((placed[3]!.data as { inputId: string }).inputId).toBe('e-PaymentAuthorized');
    expect(steps(placed)[1]!.data.cancel.map((t) => t.name)).toEqual(['payment']);
    expect(pm.state.timeouts).toEqual({});
  });

  it('marks the payment captured and ships once, with command ids derived from instance, input and step', () => {
    const pm = new Instance();
    pm.input('OrderPlaced', {});
    pm.input('PaymentAuthorized', { amountCents: 500 });
    const captured = pm.input('PaymentCaptured', { amountCents: 500 });
    expect(methods(captured)).toEqual(['markPaymentCaptured', 'shipOrder']);
    const ids = steps(captured)[0]!.data.commands.map((c) => c.commandId);
    expect(new Set(ids).size).toBe(2);
    const replay = new Instance();
    replay.input('OrderPlaced', {});
    replay.input('PaymentAuthorized', { amountCents: 500 });
    expect(steps(replay.input('PaymentCaptured', { amountCents: 500 }))[0]!.data.commands.map((c) => c.commandId)).toEqual(ids);
    pm.complete();
    // A second capture does not ship or mark again.
    expect(methods(pm.input('PaymentCaptured', { amountCents: 1 }, 'e-capture-2'))).toEqual([]);
    const shipped = pm.input('OrderShipped', {});
    expect(shipped.at(-1)!.data.status).toBe('completed');
  });

  it('refunds once when the order is cancelled after capture, also when the shipment was refused', () => {
    const pm = new Instance();
    pm.input('OrderPlaced', {});
    pm.input('PaymentAuthorized', { amountCents: 500 });
    pm.input('PaymentCaptured', { amountCents: 500 });
    pm.complete({ rejected: [1] });
    const cancelled = pm.input('OrderCancelled', {});
    expect(methods(cancelled)).toEqual(['refundPayment']);
    pm.complete();
    expect(methods(pm.input('OrderCancelled', {}, 'e-cancel-again'))).toEqual([]);
    expect(pm.input('PaymentRefunded', {}).at(-1)!.data.status).toBe('completed');
  });

  it('cancels an order whose payment timeout fires unauthorized, and ignores a timeout disarmed meanwhile', () => {
    const unpaid = new Instance();
    unpaid.input('OrderPlaced', {});
    expect(unpaid.state.pm).toMatchObject({ timeoutArmed: true });
    const fired = unpaid.timeout('payment:1');
    expect(methods(fired)).toEqual(['cancelOrder']);
    expect(unpaid.state.timeouts).toEqual({});

    const paid = new Instance();
    paid.input('OrderPlaced', {});
    paid.input('PaymentAuthorized', { amountCents: 5 });
    const late = paid.timeout('payment:1');
    expect(late.map((e) => e.type)).toEqual(['InputRecorded', 'InputApplied']);
    expect((late[1]!.data as { ignored: boolean }).ignored).toBe(true);
  });

  it('parks on a failed step, records later inputs without acting, and a retry re-sends the same command ids then drains', () => {
    const pm = new Instance();
    pm.input('OrderPlaced', {});
    pm.input('PaymentAuthorized', { amountCents: 500 });
    const captured = pm.input('PaymentCaptured', { amountCents: 500 });
    const ids = steps(captured)[0]!.data.commands.map((c) => c.commandId);
    const parked = pm.complete({ failure: 'markPaymentCaptured refused' });
    expect(parked.map((e) => [e.type, e.data.status])).toEqual([['Parked', 'parked']]);
    expect(pm.input('OrderCancelled', {}).map((e) => e.type)).toEqual(['InputRecorded']);
    expectThrow(() => pm.complete(), BusinessRuleError);
    const resumed = pm.run('RetryProcess', {});
    expect(resumed.map((e) => e.type)).toEqual(['Resumed', 'StepDecided']);
    expect(steps(resumed)[0]!.data).toMatchObject({ step: 3, attempt: 2 });
    expect(pm.state.step).toBe(3);
    expect(steps(resumed)[0]!.data.commands.map((c) => c.commandId)).toEqual(ids);
    // The attempt that failed can no longer complete the step.
    expectThrow(() => pm.run('CompleteProcessStep', { step: 3, attempt: 1, failure: '', rejected: [] }), BusinessRuleError);
    const drained = pm.complete({ rejected: [1] });
    expect(methods(drained)).toEqual(['refundPayment']);
  });

  it('is registered as the aggregate type pm-order-fulfilment with its three RPCs', () => {
    expect(processManagers).toContain(orderFulfilment);
    expect(deciderRegistry(modules).has('pm-order-fulfilment')).toBe(true);
    const specs = commandSpecs(modules);
    const routed = specs.get('shardwrite.v1.ProcessManagerService/RecordProcessInput')!.toCommand({
      processManager: 'order-fulfilment',
      instanceId: 'o1',
      commandId: 'c1',
      inputId: 'e1',
      eventType: 'OrderPlaced',
      dataJson: '{"a":1}',
      sourceStreamId: 'order-header-o1',
      sourceVersion: '1',
      settingsJson: '{"paymentTimeoutMs":5}',
    });
    expect(routed).toMatchObject({ aggregateType: 'pm-order-fulfilment', aggregateId: 'o1', command: { data: { streamId: STREAM, settings: { paymentTimeoutMs: 5 } } } });
    expectThrow(() => specs.get('shardwrite.v1.ProcessManagerService/RetryProcess')!.toCommand({ processManager: 'nope', instanceId: 'o1' }));
    expect(processManagerModule([])).toBeUndefined();
  });
});

describe('order header and payment rules the process manager relies on', () => {
  const at = { at: AT };
  const placed = orderHeader.evolve(orderHeader.initialState(), {
    type: 'OrderPlaced',
    data: { customerId: 'c', customerEmail: 'a@b.c', shippingAddress: { name: 'n', line1: 'l', city: 'c', postalCode: 'p', country: 'DE' }, placedAt: AT },
  });

  it('refuses to ship an order until its payment capture is recorded', () => {
    const ship = { type: 'ShipOrder' as const, data: { carrier: 'x', trackingNumber: 't' }, context: at };
    expectThrow(() => orderHeader.decide(ship, placed), /payment has not been captured/);
    const marked = orderHeader.decide({ type: 'MarkPaymentCaptured', data: { amountCents: 5 }, context: at }, placed);
    expect(marked.map((e) => e.type)).toEqual(['PaymentCaptureRecorded']);
    const ready = orderHeader.evolve(placed, marked[0]!);
    expect(orderHeader.decide(ship, ready).map((e) => e.type)).toEqual(['OrderShipped']);
    expectThrow(() => orderHeader.decide({ type: 'MarkPaymentCaptured', data: { amountCents: 5 }, context: at }, ready), BusinessRuleError);
  });

  it('refunds what was captured, once, and never before a capture', () => {
    let s = orderPayment.evolve(orderPayment.initialState(), { type: 'PaymentAuthorized', data: { amountCents: 100, currency: 'EUR', authorizedAt: AT } });
    const refund = { type: 'RefundPayment' as const, data: { reason: 'r' }, context: at };
    expectThrow(() => orderPayment.decide(refund, s), /nothing was captured/);
    s = orderPayment.evolve(s, { type: 'PaymentCaptured', data: { amountCents: 60, currency: 'EUR', capturedAt: AT } });
    const [refunded] = orderPayment.decide(refund, s);
    expect(refunded).toMatchObject({ type: 'PaymentRefunded', data: { amountCents: 60, currency: 'EUR' } });
    s = orderPayment.evolve(s, refunded!);
    expectThrow(() => orderPayment.decide(refund, s), /already refunded/);
    expectThrow(() => orderPayment.decide({ type: 'CapturePayment', data: { amountCents: 1 }, context: at }, s), /refunded/);
  });
});

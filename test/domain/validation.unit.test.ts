import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ValidationError, type FieldViolation } from '../../src/errors.js';
import { commandSpecs, modules } from '../../src/domain/index.js';
import type { RoutedCommand } from '../../src/domain/module.js';
import { expectThrow } from '../support/expect-error.js';

const METHODS = ['PlaceOrder', 'UpdateShippingAddress', 'ShipOrder', 'CancelOrder', 'AddOrderLine', 'RemoveOrderLine', 'AuthorizePayment', 'CapturePayment', 'AddOrderLines'] as const;
type Method = (typeof METHODS)[number];

const specs = commandSpecs(modules);
function toCommand(method: Method, request: unknown): RoutedCommand {
  const spec = specs.get(`shardwrite.v1.OrderService/${method}`);
  if (!spec) throw new Error(`no spec for ${method}`);
  return spec.toCommand(request);
}

/** The violations `toCommand` reports; fails the test when it does not throw a ValidationError. */
function violations(method: Method, request: unknown): FieldViolation[] {
  try {
    toCommand(method, request);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).violations;
  }
  throw new Error(`${method} accepted ${JSON.stringify(request)?.slice(0, 200)}`);
}
const fieldsOf = (method: Method, request: unknown) => violations(method, request).map((v) => v.field);

const address = { name: 'Ada Lovelace', line1: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };

/** Valid requests shaped like proto-loader's output: '' for unset strings, no `expectedVersion` key when unset. */
const valid: Record<Method, Record<string, unknown>> = {
  PlaceOrder: { orderId: 'o-1', commandId: '', customerId: 'c-1', customerEmail: 'ada@example.com', shippingAddress: address },
  UpdateShippingAddress: { orderId: 'o-1', commandId: '', shippingAddress: address },
  ShipOrder: { orderId: 'o-1', commandId: '', carrier: 'DHL', trackingNumber: 'JD0001' },
  CancelOrder: { orderId: 'o-1', commandId: '', reason: 'changed my mind' },
  AddOrderLine: { orderId: 'o-1', commandId: '', lineId: 'l-1', sku: 'SKU-1', quantity: 2, unitPriceCents: '1250' },
  RemoveOrderLine: { orderId: 'o-1', commandId: '', lineId: 'l-1' },
  AuthorizePayment: { orderId: 'o-1', commandId: 'pay-1', amountCents: '10000', currency: 'EUR' },
  CapturePayment: { orderId: 'o-1', commandId: 'pay-1', amountCents: '2500' },
  AddOrderLines: {
    orderId: 'o-1',
    commandId: '',
    lines: [
      { lineId: 'l-1', sku: 'SKU-1', quantity: 2, unitPriceCents: '1250' },
      { lineId: 'l-2', sku: 'SKU-2', quantity: 1, unitPriceCents: '0' },
    ],
  },
};
/** Money commands: `command_id` is required. */
const MONEY: readonly Method[] = ['AuthorizePayment', 'CapturePayment'];
const withField = (method: Method, patch: Record<string, unknown>) => ({ ...valid[method], ...patch });
const withAddress = (method: Method, patch: Record<string, unknown>) => withField(method, { shippingAddress: { ...address, ...patch } });

describe('money commands', () => {
  it.each(MONEY)('%s refuses a request without command_id (INVALID_ARGUMENT naming the field)', (method) => {
    expect(violations(method, withField(method, { commandId: '' }))).toEqual([{ field: 'command_id', description: 'is required: a retry of a money command must never apply it twice' }]);
    const { commandId: _omitted, ...without } = valid[method];
    expect(fieldsOf(method, without)).toEqual(['command_id']);
  });

  it.each(MONEY)('%s carries its command id', (method) => {
    expect(toCommand(method, valid[method]).commandId).toBe('pay-1');
  });
});

describe('order commands: fields every request shares', () => {
  describe.each(METHODS)('%s', (method) => {
    it('turns a valid request into a command routed by order_id, without command id or expected version', () => {
      if (MONEY.includes(method)) return; // money commands require a command id (tested below)
      const routed = toCommand(method, valid[method]);
      expect(routed.aggregateId).toBe('o-1');
      expect(routed.command.type).toBe(method);
      expect(routed.commandId).toBeUndefined();
      expect(routed.expectedVersion).toBeUndefined();
      expect('commandId' in routed).toBe(false);
      expect('expectedVersion' in routed).toBe(false);
    });

    it('carries a command id and a parsed expected version', () => {
      const routed = toCommand(method, withField(method, { commandId: 'cmd-7f3a', expectedVersion: '42', _expectedVersion: 'expectedVersion' }));
      expect(routed.commandId).toBe('cmd-7f3a');
      expect(routed.expectedVersion).toBe(42);
    });

    it('reads expected_version 0 as "the stream must not exist yet", not as absent', () => {
      expect(toCommand(method, withField(method, { expectedVersion: '0' })).expectedVersion).toBe(0);
    });

    it('accepts the largest safe expected_version', () => {
      expect(toCommand(method, withField(method, { expectedVersion: '9007199254740991' })).expectedVersion).toBe(2 ** 53 - 1);
    });

    it('treats an undefined expected_version as absent', () => {
      expect(toCommand(method, withField(method, { expectedVersion: undefined })).expectedVersion).toBeUndefined();
    });

    it.each([null, undefined, 'PlaceOrder', 42, true, [], [valid[method]]])('refuses a request that is not a message: %j', (input) => {
      expect(violations(method, input)).toEqual([{ field: '', description: 'the request must be a message' }]);
    });

    it('refuses a missing order_id', () => {
      expect(fieldsOf(method, withField(method, { orderId: '' }))).toEqual(['order_id']);
      const { orderId: _omitted, ...withoutId } = valid[method];
      expect(fieldsOf(method, withoutId)).toEqual(['order_id']);
    });

    it('refuses a 100 kB order_id without echoing it back', () => {
      const found = violations(method, withField(method, { orderId: 'o'.repeat(100_000) }));
      expect(found).toEqual([{ field: 'order_id', description: 'must be at most 128 characters' }]);
    });

    it('accepts an order_id of 128 characters and refuses one of 129', () => {
      expect(toCommand(method, withField(method, { orderId: 'a'.repeat(128) })).aggregateId).toHaveLength(128);
      expect(fieldsOf(method, withField(method, { orderId: 'a'.repeat(129) }))).toEqual(['order_id']);
    });

    it.each(['o\u0000', 'o\n1', 'o 1', ' o-1', 'o/1', 'ordér', 'o-1\u007f', '\ud800'])('refuses order_id %j, outside [A-Za-z0-9._:-]', (orderId) => {
      expect(fieldsOf(method, withField(method, { orderId }))).toEqual(['order_id']);
    });

    it('accepts every character of the id alphabet', () => {
      expect(toCommand(method, withField(method, { orderId: 'Az09._:-' })).aggregateId).toBe('Az09._:-');
    });

    it.each([42, {}, [], true])('refuses an order_id of the wrong type: %j', (orderId) => {
      expect(fieldsOf(method, withField(method, { orderId }))).toEqual(['order_id']);
    });

    it.each(['cmd\u0000', 'cmd\r\n', 'cmd\u0085', 'clé', 'x'.repeat(129), 42])('refuses command_id %j', (commandId) => {
      expect(fieldsOf(method, withField(method, { commandId }))).toEqual(['command_id']);
    });

    it('accepts a command_id of 128 printable ASCII characters', () => {
      const commandId = ' !~'.repeat(42) + 'ab';
      expect(toCommand(method, withField(method, { commandId })).commandId).toBe(commandId);
    });

    it.each(['', '-1', 'abc', '1.5', '1e3', ' 1', '1 ', '+1', '0x10', '9007199254740992', '99999999999999999999999', -1, 1.5, true, {}])('refuses expected_version %j', (expectedVersion) => {
      expect(fieldsOf(method, withField(method, { expectedVersion }))).toEqual(['expected_version']);
    });

    it('reports every violation of a request at once', () => {
      const found = fieldsOf(method, withField(method, { orderId: '', commandId: '\u0001', expectedVersion: 'x' }));
      expect(found.slice(0, 3)).toEqual(['order_id', 'command_id', 'expected_version']);
    });

    it('ignores fields inherited through the prototype chain', () => {
      const request = Object.create({ orderId: 'o-1' }) as Record<string, unknown>;
      Object.assign(request, valid[method]);
      delete request.orderId;
      expect(fieldsOf(method, request)).toEqual(['order_id']);
    });

    it('never throws anything but a ValidationError, whatever the fields hold', () => {
      const hostile = fc.oneof(fc.anything(), fc.string(), fc.constantFrom('', '0', '-1', 'x'.repeat(100_000), '\u0000', '9'.repeat(30), 'NaN'), fc.double());
      const keys = Object.keys(valid[method]).concat('expectedVersion');
      fc.assert(
        fc.property(fc.subarray(keys), fc.array(hostile, { minLength: keys.length, maxLength: keys.length }), (picked, values) => {
          const request: Record<string, unknown> = { ...valid[method] };
          picked.forEach((key, i) => {
            request[key] = values[i];
          });
          try {
            const routed = toCommand(method, request);
            expect(routed.command.type).toBe(method);
          } catch (err) {
            expect(err).toBeInstanceOf(ValidationError);
          }
        }),
        { numRuns: 200 },
      );
      fc.assert(
        fc.property(fc.anything(), (input) => {
          expectThrow(() => toCommand(method, input), ValidationError);
        }),
        { numRuns: 200 },
      );
    });
  });
});

describe('PlaceOrder', () => {
  it('returns the expected routed command, with the text fields trimmed', () => {
    const request = {
      ...valid.PlaceOrder,
      commandId: 'cmd-1',
      expectedVersion: '0',
      customerEmail: '  ada@example.com ',
      shippingAddress: { ...address, name: '  Ada Lovelace  ', city: 'London\u00a0' },
    };
    expect(toCommand('PlaceOrder', request)).toStrictEqual({
      aggregateType: 'order-header',
      aggregateId: 'o-1',
      commandId: 'cmd-1',
      expectedVersion: 0,
      command: {
        type: 'PlaceOrder',
        data: { customerId: 'c-1', customerEmail: 'ada@example.com', shippingAddress: address },
      },
    });
  });

  it('lists every missing field of an empty request', () => {
    expect(fieldsOf('PlaceOrder', {})).toEqual(['order_id', 'customer_id', 'customer_email', 'shipping_address']);
  });

  it('refuses a missing shipping address (null, as proto-loader decodes it)', () => {
    expect(fieldsOf('PlaceOrder', withField('PlaceOrder', { shippingAddress: null }))).toEqual(['shipping_address']);
  });

  it('refuses a shipping address that is not a message', () => {
    expect(fieldsOf('PlaceOrder', withField('PlaceOrder', { shippingAddress: 'London' }))).toEqual(['shipping_address']);
  });

  it('names each missing address field by its proto path', () => {
    const empty = { name: '', line1: ' ', city: '', postalCode: '', country: '' };
    expect(fieldsOf('PlaceOrder', withField('PlaceOrder', { shippingAddress: empty }))).toEqual([
      'shipping_address.name',
      'shipping_address.line1',
      'shipping_address.city',
      'shipping_address.postal_code',
      'shipping_address.country',
    ]);
  });

  it.each([
    ['name', 'x'.repeat(201)],
    ['name', 'Ada\u0007'],
    ['name', 'Ada\ud800'],
    ['line1', 'a\nb'],
    ['line1', 'x'.repeat(201)],
    ['city', '\u0000'],
    ['city', 'x'.repeat(201)],
    ['postalCode', '1'.repeat(33)],
    ['postalCode', 42],
  ] as const)('refuses shipping_address.%s = %j', (key, value) => {
    const field = key === 'postalCode' ? 'postal_code' : key;
    expect(fieldsOf('PlaceOrder', withAddress('PlaceOrder', { [key]: value }))).toEqual([`shipping_address.${field}`]);
  });

  it('accepts names of 200 characters, counting an emoji as one', () => {
    const name = '😀'.repeat(200);
    const routed = toCommand('PlaceOrder', withAddress('PlaceOrder', { name }));
    expect((routed.command.data as { shippingAddress: { name: string } }).shippingAddress.name).toBe(name);
  });

  it.each(['de', 'DEU', 'D', 'ZZ', 'XX', '', 49])('refuses country %j', (country) => {
    expect(fieldsOf('PlaceOrder', withAddress('PlaceOrder', { country }))).toEqual(['shipping_address.country']);
  });

  it.each(['DE', 'US', 'JP', 'SS', 'XK'])('accepts country %s', (country) => {
    expect(() => toCommand('PlaceOrder', withAddress('PlaceOrder', { country }))).not.toThrow();
  });

  it.each([
    'ada',
    'ada@',
    '@example.com',
    'ada@example',
    'ada lovelace@example.com',
    'ada@@example.com',
    'ada@example..com',
    'ada@exa\u0000mple.com',
    `${'a'.repeat(65)}@example.com`,
    `ada@${'e'.repeat(250)}.com`,
    42,
  ])('refuses customer_email %j', (customerEmail) => {
    expect(fieldsOf('PlaceOrder', withField('PlaceOrder', { customerEmail }))).toEqual(['customer_email']);
  });

  it.each(['ada@example.com', 'ada.lovelace+orders@mail.example.co.uk', 'Ada@Example.COM'])('accepts customer_email %s', (customerEmail) => {
    expect(() => toCommand('PlaceOrder', withField('PlaceOrder', { customerEmail }))).not.toThrow();
  });

  it.each(['', 'c 1', 'c/1', 'x'.repeat(129)])('refuses customer_id %j', (customerId) => {
    expect(fieldsOf('PlaceOrder', withField('PlaceOrder', { customerId }))).toEqual(['customer_id']);
  });
});

describe('UpdateShippingAddress', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('UpdateShippingAddress', valid.UpdateShippingAddress)).toStrictEqual({
      aggregateType: 'order-header',
      aggregateId: 'o-1',
      command: { type: 'UpdateShippingAddress', data: { shippingAddress: address } },
    });
  });

  it('refuses a missing address', () => {
    expect(fieldsOf('UpdateShippingAddress', withField('UpdateShippingAddress', { shippingAddress: null }))).toEqual(['shipping_address']);
  });

  it('refuses a lower-case country', () => {
    expect(fieldsOf('UpdateShippingAddress', withAddress('UpdateShippingAddress', { country: 'gb' }))).toEqual(['shipping_address.country']);
  });
});

describe('ShipOrder', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('ShipOrder', { ...valid.ShipOrder, carrier: ' DHL Express ' })).toStrictEqual({
      aggregateType: 'order-header',
      aggregateId: 'o-1',
      command: { type: 'ShipOrder', data: { carrier: 'DHL Express', trackingNumber: 'JD0001' } },
    });
  });

  it.each([
    ['carrier', '   '],
    ['carrier', 'x'.repeat(101)],
    ['carrier', 'DHL\t'.repeat(2)],
    ['tracking_number', ''],
    ['tracking_number', 'JD\n0001'],
    ['tracking_number', 'x'.repeat(101)],
  ] as const)('refuses %s %j', (field, value) => {
    const key = field === 'carrier' ? 'carrier' : 'trackingNumber';
    expect(fieldsOf('ShipOrder', withField('ShipOrder', { [key]: value }))).toEqual([field]);
  });

  it('accepts a carrier of 100 characters', () => {
    expect(() => toCommand('ShipOrder', withField('ShipOrder', { carrier: 'x'.repeat(100) }))).not.toThrow();
  });
});

describe('CancelOrder', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('CancelOrder', valid.CancelOrder)).toStrictEqual({
      aggregateType: 'order-header',
      aggregateId: 'o-1',
      command: { type: 'CancelOrder', data: { reason: 'changed my mind' } },
    });
  });

  it('accepts a reason of 500 characters and refuses one of 501', () => {
    expect(() => toCommand('CancelOrder', withField('CancelOrder', { reason: 'r'.repeat(500) }))).not.toThrow();
    expect(fieldsOf('CancelOrder', withField('CancelOrder', { reason: 'r'.repeat(501) }))).toEqual(['reason']);
  });

  it.each(['', '  ', 'late\u0000', 'x'.repeat(100_000), null, 7])('refuses reason %j', (reason) => {
    expect(fieldsOf('CancelOrder', withField('CancelOrder', { reason }))).toEqual(['reason']);
  });
});

describe('AddOrderLines', () => {
  const line = (lineId: string, patch: Record<string, unknown> = {}) => ({ lineId, sku: 'SKU-1', quantity: 1, unitPriceCents: '100', ...patch });

  it('returns every line, in order, with int64 strings as numbers', () => {
    expect(toCommand('AddOrderLines', valid.AddOrderLines).command).toStrictEqual({
      type: 'AddOrderLines',
      data: {
        lines: [
          { lineId: 'l-1', sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
          { lineId: 'l-2', sku: 'SKU-2', quantity: 1, unitPriceCents: 0 },
        ],
      },
    });
  });

  it.each([[[]], [Array.from({ length: 21 }, (_, i) => line(`l-${i}`))], [null], ['l-1']])('refuses lines %#: 1..20 lines', (lines) => {
    expect(violations('AddOrderLines', withField('AddOrderLines', { lines }))).toEqual([{ field: 'lines', description: 'must hold 1..20 lines' }]);
  });

  it('accepts 20 lines', () => {
    const lines = Array.from({ length: 20 }, (_, i) => line(`l-${i}`));
    expect((toCommand('AddOrderLines', withField('AddOrderLines', { lines })).command.data as { lines: unknown[] }).lines).toHaveLength(20);
  });

  it('names the line and field of every violation, as AddOrderLine would for each line', () => {
    const lines = [line('l-1'), line('l 2', { quantity: 0 }), null, line('l-4', { unitPriceCents: '-1', sku: '' })];
    expect(fieldsOf('AddOrderLines', withField('AddOrderLines', { lines }))).toEqual(['lines[1].line_id', 'lines[1].quantity', 'lines[2]', 'lines[3].sku', 'lines[3].unit_price_cents']);
  });

  it('refuses a line id that an earlier line of the command has', () => {
    expect(violations('AddOrderLines', withField('AddOrderLines', { lines: [line('l-1'), line('l-2'), line('l-1')] }))).toEqual([
      { field: 'lines[2].line_id', description: 'repeats an earlier line of this command' },
    ]);
  });
});

describe('AddOrderLine', () => {
  it('returns the expected routed command, with int64 strings as numbers', () => {
    expect(toCommand('AddOrderLine', { ...valid.AddOrderLine, commandId: 'add-l-1', expectedVersion: '3' })).toStrictEqual({
      aggregateType: 'order-lines',
      aggregateId: 'o-1',
      commandId: 'add-l-1',
      expectedVersion: 3,
      command: { type: 'AddOrderLine', data: { lineId: 'l-1', sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 } },
    });
  });

  it.each(['0', '1000000000000'])('accepts unit_price_cents %s', (unitPriceCents) => {
    const routed = toCommand('AddOrderLine', withField('AddOrderLine', { quantity: 1, unitPriceCents }));
    expect((routed.command.data as { unitPriceCents: number }).unitPriceCents).toBe(Number(unitPriceCents));
  });

  it.each(['-1', '1000000000001', '9223372036854775807', '99999999999999999999999', 'abc', '1.5', '', ' 5', null, -1, 1.5])('refuses unit_price_cents %j', (unitPriceCents) => {
    expect(fieldsOf('AddOrderLine', withField('AddOrderLine', { unitPriceCents }))).toEqual(['unit_price_cents']);
  });

  it('refuses a line whose total would exceed the money limit', () => {
    expect(violations('AddOrderLine', withField('AddOrderLine', { quantity: 10_000, unitPriceCents: '100000001' }))).toEqual([
      { field: 'unit_price_cents', description: 'quantity × unit_price_cents must be at most 1000000000000' },
    ]);
  });

  it.each([0, -5, 10_001, 2 ** 31, 1.5, '2', null])('refuses quantity %j', (quantity) => {
    expect(fieldsOf('AddOrderLine', withField('AddOrderLine', { quantity }))).toEqual(['quantity']);
  });

  it.each([
    ['line_id', 'lineId', ''],
    ['line_id', 'lineId', 'l 1'],
    ['sku', 'sku', ''],
    ['sku', 'sku', 'SKU#1'],
    ['sku', 'sku', 'S'.repeat(129)],
  ] as const)('refuses %s %j', (field, key, value) => {
    expect(fieldsOf('AddOrderLine', withField('AddOrderLine', { [key]: value }))).toEqual([field]);
  });
});

describe('RemoveOrderLine', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('RemoveOrderLine', valid.RemoveOrderLine)).toStrictEqual({
      aggregateType: 'order-lines',
      aggregateId: 'o-1',
      command: { type: 'RemoveOrderLine', data: { lineId: 'l-1' } },
    });
  });

  it('refuses a missing line_id', () => {
    expect(fieldsOf('RemoveOrderLine', withField('RemoveOrderLine', { lineId: '' }))).toEqual(['line_id']);
  });
});

describe('AuthorizePayment', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('AuthorizePayment', valid.AuthorizePayment)).toStrictEqual({
      aggregateType: 'order-payment',
      aggregateId: 'o-1',
      commandId: 'pay-1',
      command: { type: 'AuthorizePayment', data: { amountCents: 10_000, currency: 'EUR' } },
    });
  });

  it.each(['0', '-5', '1000000000001', '18446744073709551615', 'ten'])('refuses amount_cents %j', (amountCents) => {
    expect(fieldsOf('AuthorizePayment', withField('AuthorizePayment', { amountCents }))).toEqual(['amount_cents']);
  });

  it.each(['eur', 'EURO', 'EU', '', 'E1R', 978])('refuses currency %j', (currency) => {
    expect(fieldsOf('AuthorizePayment', withField('AuthorizePayment', { currency }))).toEqual(['currency']);
  });
});

describe('CapturePayment', () => {
  it('returns the expected routed command', () => {
    expect(toCommand('CapturePayment', valid.CapturePayment)).toStrictEqual({
      aggregateType: 'order-payment',
      aggregateId: 'o-1',
      commandId: 'pay-1',
      command: { type: 'CapturePayment', data: { amountCents: 2_500 } },
    });
  });

  it('accepts the largest amount', () => {
    expect(toCommand('CapturePayment', withField('CapturePayment', { amountCents: '1000000000000' })).command.data).toEqual({
      amountCents: 1e12,
    });
  });

  it.each(['0', '-1', '1000000000001', ''])('refuses amount_cents %j', (amountCents) => {
    expect(fieldsOf('CapturePayment', withField('CapturePayment', { amountCents }))).toEqual(['amount_cents']);
  });
});

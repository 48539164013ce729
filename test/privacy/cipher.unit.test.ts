import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SEALED_PREFIX, UNREADABLE, isSealed, openValue, sealValue } from '../../src/privacy/cipher.js';
import { LocalKeyProvider, parseMasterKey } from '../../src/privacy/key-provider.js';
import { expectRejection, expectThrow } from '../support/expect-error.js';

const key = randomBytes(32);
const at = { streamId: 'order-header-o1', version: 1, type: 'OrderPlaced', field: 'customerEmail' };

describe('sealing one personal field', () => {
  it('opens what it sealed, any JSON value, and holds none of the plaintext', () => {
    const address = { name: 'Ada Lovelace', line1: '12 St James Sq' };
    const sealed = sealValue(key, { ...at, field: 'shippingAddress' }, address);
    expect(isSealed(sealed)).toBe(true);
    expect(sealed.startsWith(SEALED_PREFIX)).toBe(true);
    expect(sealed).not.toMatch(/Ada|James/);
    expect(openValue(key, { ...at, field: 'shippingAddress' }, sealed)).toEqual(address);
  });

  it('uses a fresh IV for every value: the same e-mail seals differently each time', () => {
    expect(sealValue(key, at, 'ada@example.com')).not.toBe(sealValue(key, at, 'ada@example.com'));
  });

  it('binds a value to its event: moved to another stream, version, type or field, it does not open', () => {
    const sealed = sealValue(key, at, 'ada@example.com');
    for (const other of [{ streamId: 'order-header-o2' }, { version: 2 }, { type: 'ShippingAddressUpdated' }, { field: 'shippingAddress' }]) {
      expect(openValue(key, { ...at, ...other }, sealed)).toBe(UNREADABLE);
    }
  });

  it('refuses another key, a tampered value and garbage without throwing', () => {
    const sealed = sealValue(key, at, 'ada@example.com');
    expect(openValue(randomBytes(32), at, sealed)).toBe(UNREADABLE);
    const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    raw[14]! ^= 1;
    expect(openValue(key, at, SEALED_PREFIX + raw.toString('base64'))).toBe(UNREADABLE);
    expect(openValue(key, at, `${SEALED_PREFIX}AAAA`)).toBe(UNREADABLE);
  });
});

describe('wrapping data keys with the master key', () => {
  it('unwraps a key only for the subject it was wrapped for, and only under the same master key', async () => {
    const provider = new LocalKeyProvider(randomBytes(32));
    const dataKey = randomBytes(32);
    const wrapped = await provider.wrap('cust-1', dataKey);
    expect(wrapped.includes(dataKey)).toBe(false);
    expect(await provider.unwrap('cust-1', wrapped)).toEqual(dataKey);
    await expectRejection(provider.unwrap('cust-2', wrapped), /does not unwrap/);
    await expectRejection(new LocalKeyProvider(randomBytes(32)).unwrap('cust-1', wrapped), /does not unwrap/);
  });

  it('reads a configured master key as base64 of 32 bytes, and refuses anything else', () => {
    const k = randomBytes(32);
    expect(parseMasterKey(`${k.toString('base64')}\n`)).toEqual(k);
    expectThrow(() => parseMasterKey(randomBytes(16).toString('base64')), /32 bytes/);
  });
});

import { describe, expect, it } from 'vitest';
import { BusinessRuleError } from '../../src/errors.js';
import { orderPayment, type AuthorizePayment, type CapturePayment, type PaymentAuthorized, type PaymentCaptured } from '../../src/domain/orders/payment.js';
import { AT, command, spec, stateAfter } from './support.js';

const authorize = (amountCents: number, currency = 'EUR') => command<AuthorizePayment>('AuthorizePayment', { amountCents, currency });
const capture = (amountCents: number) => command<CapturePayment>('CapturePayment', { amountCents });
const authorized = (amountCents: number, currency = 'EUR'): PaymentAuthorized => ({
  type: 'PaymentAuthorized',
  data: { amountCents, currency, authorizedAt: AT },
});
const captured = (amountCents: number, currency = 'EUR'): PaymentCaptured => ({
  type: 'PaymentCaptured',
  data: { amountCents, currency, capturedAt: AT },
});

const payment = spec(orderPayment);

describe('order-payment', () => {
  it('declares state schema version 2 (the refunded flag) and no upcasters', () => {
    expect(orderPayment.aggregateType).toBe('order-payment');
    expect(orderPayment.stateSchemaVersion).toBe(2);
    expect(orderPayment.upcasters).toEqual({});
  });

  describe('AuthorizePayment', () => {
    it('authorizes an amount in a currency', () => {
      payment
        .given([])
        .when(authorize(10_000, 'USD'))
        .then([authorized(10_000, 'USD')]);
    });

    it('refuses a second authorization', () => {
      payment
        .given([authorized(10_000)])
        .when(authorize(5_000))
        .thenThrows(BusinessRuleError, /already authorized/);
    });

    it('refuses a second authorization even after everything was captured', () => {
      payment
        .given([authorized(10_000), captured(10_000)])
        .when(authorize(1))
        .thenThrows(BusinessRuleError);
    });
  });

  describe('CapturePayment', () => {
    it('refuses a capture without an authorization', () => {
      payment
        .given([])
        .when(capture(100))
        .thenThrows(BusinessRuleError, /not been authorized/);
    });

    it('captures part of the authorized amount, in the authorized currency', () => {
      payment
        .given([authorized(10_000, 'CHF')])
        .when(capture(2_500))
        .then([captured(2_500, 'CHF')]);
    });

    it('captures exactly the authorized amount', () => {
      payment
        .given([authorized(10_000)])
        .when(capture(10_000))
        .then([captured(10_000)]);
    });

    it('captures the rest after earlier partial captures', () => {
      payment
        .given([authorized(10_000), captured(4_000), captured(5_000)])
        .when(capture(1_000))
        .then([captured(1_000)]);
    });

    it('refuses a single capture above the authorized amount', () => {
      payment
        .given([authorized(10_000)])
        .when(capture(10_001))
        .thenThrows(BusinessRuleError, /remain authorized/);
    });

    it('refuses a capture that would take the total captured above the authorized amount', () => {
      payment
        .given([authorized(10_000), captured(7_000)])
        .when(capture(3_001))
        .thenThrows(BusinessRuleError);
    });

    it('refuses any capture once everything is captured', () => {
      payment
        .given([authorized(10_000), captured(10_000)])
        .when(capture(1))
        .thenThrows(BusinessRuleError);
    });
  });

  describe('state', () => {
    it('sums the captures against the authorization', () => {
      expect(stateAfter(orderPayment, [authorized(10_000), captured(4_000), captured(5_000)])).toStrictEqual({
        status: 'authorized',
        authorizedCents: 10_000,
        currency: 'EUR',
        capturedCents: 9_000,
        refunded: false,
      });
    });
  });
});

/**
 * Field rules for decoded requests. Every helper takes the list of violations
 * found so far, the proto (snake_case) field name and the untrusted value; it
 * appends a violation instead of throwing, so a request with several problems
 * is refused once with all of them (`throwIfViolations`).
 *
 * A helper returns the parsed value when the field is valid. When it is not,
 * the returned value is a placeholder of the right type that must not be used:
 * callers always finish with `throwIfViolations` before building a command.
 *
 * Descriptions never echo the offending value: it may be huge (a 100 kB id)
 * or personal data, and violations travel to the caller and into logs.
 */
import { ValidationError, type FieldViolation } from '../errors.js';

/** Largest money amount accepted anywhere, in cents (10^12 cents = 10 billion units). */
export const MAX_MONEY_CENTS = 1_000_000_000_000;
/** Bounds of an order line's quantity. */
export const MIN_QUANTITY = 1;
export const MAX_QUANTITY = 10_000;
/** Maximum length of ids (`order_id`, `line_id`, `customer_id`, `sku`) and of `command_id`. */
export const MAX_ID_LENGTH = 128;
/** Maximum length of an email address (RFC 5321 path limit). */
export const MAX_EMAIL_LENGTH = 254;

/** Maximum lengths of the free-text fields, in Unicode code points. */
export const TEXT_LIMITS = {
  name: 200,
  line1: 200,
  city: 200,
  postalCode: 32,
  reason: 500,
  carrier: 100,
  trackingNumber: 100,
} as const;

/** A validated postal address; every field is trimmed and non-empty. */
export interface Address {
  readonly name: string;
  readonly line1: string;
  readonly city: string;
  readonly postalCode: string;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string;
}

const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
// Cc = C0/C1 controls and DEL; Cs = lone surrogates, which JSON and
// PostgreSQL's jsonb cannot store, so letting them through would fail the
// append instead of the validation step.
const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
const INT_PATTERN = /^-?\d+$/;
const UNSIGNED_PATTERN = /^\d+$/;
const CURRENCY_PATTERN = /^[A-Z]{3}$/;
// Deliberately simple: one '@', no whitespace, a dot in the domain. Real
// verification is sending mail, not a regex.
const EMAIL_PATTERN = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;
// Longest decimal text that can still be a safe integer once an optional sign
// and leading zeros are allowed for; bounds the work done on hostile input.
const MAX_INT_TEXT = 24;

/**
 * The officially assigned ISO 3166-1 alpha-2 codes, plus XK (Kosovo): not
 * ISO-assigned, but used by carriers, CLDR and payment providers, and
 * refusing it would refuse real deliveries.
 */
const COUNTRY_CODES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ ' +
    'BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ ' +
    'DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY ' +
    'HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY ' +
    'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ ' +
    'NA NC NE NF NG NI NL NO NP NR NU NZ OM ' +
    'PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ ' +
    'TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW'
  ).split(' '),
);

/**
 * Returns the request as a record, or throws a `ValidationError` when it is
 * not a plain object (null, an array, a primitive): nothing else can be
 * checked field by field.
 */
export function requireMessage(input: unknown): Record<string, unknown> {
  if (!isRecord(input)) throw new ValidationError([{ field: '', description: 'the request must be a message' }]);
  return input;
}

/** Throws one `ValidationError` listing every violation, if there is any. */
export function throwIfViolations(violations: readonly FieldViolation[]): void {
  if (violations.length > 0) throw new ValidationError([...violations]);
}

/**
 * An identifier: 1..128 characters from `[A-Za-z0-9._:-]`. Not trimmed: ids
 * are compared byte for byte, so a padded id is refused rather than altered.
 */
export function checkId(out: FieldViolation[], field: string, value: unknown): string {
  if (value === undefined || value === null || value === '') return fail(out, field, 'is required', '');
  if (typeof value !== 'string') return fail(out, field, 'must be a string', '');
  if (value.length > MAX_ID_LENGTH) return fail(out, field, `must be at most ${MAX_ID_LENGTH} characters`, '');
  if (!ID_PATTERN.test(value)) return fail(out, field, 'may contain only A-Z, a-z, 0-9 and . _ : -', '');
  return value;
}

/**
 * The idempotency key: empty (or absent) means none was sent and yields
 * `undefined`; otherwise 1..128 printable ASCII characters.
 */
export function checkCommandId(out: FieldViolation[], field: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') return fail(out, field, 'must be a string', undefined);
  if (value.length > MAX_ID_LENGTH) return fail(out, field, `must be at most ${MAX_ID_LENGTH} characters`, undefined);
  if (!PRINTABLE_ASCII.test(value)) return fail(out, field, 'must be printable ASCII without control characters', undefined);
  return value;
}

/**
 * The proto3 `optional int64 expected_version`. Absent (the key missing,
 * `undefined` or `null`) yields `undefined`; present, it must be a decimal
 * string (or an integer) of a safe non-negative integer. `0` is a real value:
 * "the stream must not exist yet".
 */
export function checkExpectedVersion(out: FieldViolation[], field: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = parseInteger(value, false);
  if (n === undefined) return fail(out, field, 'must be a non-negative integer below 2^53', undefined);
  return n;
}

/**
 * Free text: trimmed, then 1..`maxLength` code points without control
 * characters. Returns the trimmed text.
 */
export function checkText(out: FieldViolation[], field: string, value: unknown, maxLength: number): string {
  if (value === undefined || value === null) return fail(out, field, 'is required', '');
  if (typeof value !== 'string') return fail(out, field, 'must be a string', '');
  // Cheap bound first so a huge string is refused without being trimmed or
  // split; a code point is at most two UTF-16 units.
  if (value.length > maxLength * 2 + 1024) return fail(out, field, `must be at most ${maxLength} characters`, '');
  const text = value.trim();
  if (text === '') return fail(out, field, 'is required', '');
  if (codePointLength(text) > maxLength) return fail(out, field, `must be at most ${maxLength} characters`, '');
  if (CONTROL_OR_LONE_SURROGATE.test(text)) return fail(out, field, 'must not contain control characters', '');
  return text;
}

/** An email address: trimmed, at most 254 characters, `local@domain.tld` with a local part of at most 64. */
export function checkEmail(out: FieldViolation[], field: string, value: unknown): string {
  if (value === undefined || value === null) return fail(out, field, 'is required', '');
  if (typeof value !== 'string') return fail(out, field, 'must be a string', '');
  const email = value.trim();
  if (email === '') return fail(out, field, 'is required', '');
  if (email.length > MAX_EMAIL_LENGTH) return fail(out, field, `must be at most ${MAX_EMAIL_LENGTH} characters`, '');
  if (CONTROL_OR_LONE_SURROGATE.test(email) || !EMAIL_PATTERN.test(email) || email.indexOf('@') > 64) {
    return fail(out, field, 'must be an email address', '');
  }
  return email;
}

/** An ISO 3166-1 alpha-2 country code in upper case, e.g. `DE`. */
export function checkCountry(out: FieldViolation[], field: string, value: unknown): string {
  if (value === undefined || value === null || value === '') return fail(out, field, 'is required', '');
  if (typeof value !== 'string' || !COUNTRY_CODES.has(value)) {
    return fail(out, field, 'must be an ISO 3166-1 alpha-2 country code in upper case', '');
  }
  return value;
}

/** An ISO 4217 currency code: three upper-case letters, e.g. `EUR`. */
export function checkCurrency(out: FieldViolation[], field: string, value: unknown): string {
  if (value === undefined || value === null || value === '') return fail(out, field, 'is required', '');
  if (typeof value !== 'string' || !CURRENCY_PATTERN.test(value)) {
    return fail(out, field, 'must be an ISO 4217 currency code (three upper-case letters)', '');
  }
  return value;
}

/**
 * An int64 amount of cents (a decimal string on the wire, or an integer)
 * within `[min, MAX_MONEY_CENTS]`. Use `min: 0` for prices, `min: 1` for
 * amounts that must be positive.
 */
export function checkMoneyCents(out: FieldViolation[], field: string, value: unknown, min: 0 | 1): number {
  if (value === undefined || value === null || value === '') return fail(out, field, 'is required', 0);
  const n = parseInteger(value, true);
  if (n === undefined) return fail(out, field, 'must be an integer number of cents', 0);
  if (n < min) return fail(out, field, min === 0 ? 'must not be negative' : 'must be positive', 0);
  if (n > MAX_MONEY_CENTS) return fail(out, field, `must be at most ${MAX_MONEY_CENTS}`, 0);
  return n;
}

/** An int32 quantity within `[MIN_QUANTITY, MAX_QUANTITY]`. */
export function checkQuantity(out: FieldViolation[], field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) return fail(out, field, 'must be an integer', 0);
  if (value < MIN_QUANTITY || value > MAX_QUANTITY) {
    return fail(out, field, `must be between ${MIN_QUANTITY} and ${MAX_QUANTITY}`, 0);
  }
  return value;
}

/**
 * A required `Address` message; each missing or bad field is reported as
 * `${field}.<proto field>`, e.g. `shipping_address.postal_code`.
 */
export function checkAddress(out: FieldViolation[], field: string, value: unknown): Address {
  const empty: Address = { name: '', line1: '', city: '', postalCode: '', country: '' };
  if (value === undefined || value === null) return fail(out, field, 'is required', empty);
  if (!isRecord(value)) return fail(out, field, 'must be a message', empty);
  return {
    name: checkText(out, `${field}.name`, value.name, TEXT_LIMITS.name),
    line1: checkText(out, `${field}.line1`, value.line1, TEXT_LIMITS.line1),
    city: checkText(out, `${field}.city`, value.city, TEXT_LIMITS.city),
    postalCode: checkText(out, `${field}.postal_code`, value.postalCode, TEXT_LIMITS.postalCode),
    country: checkCountry(out, `${field}.country`, value.country),
  };
}

function fail<T>(out: FieldViolation[], field: string, description: string, placeholder: T): T {
  out.push({ field, description });
  return placeholder;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a decimal string or a JS integer into a safe integer; `undefined` when it is neither. */
function parseInteger(value: unknown, allowNegative: boolean): number | undefined {
  let n: number;
  if (typeof value === 'number') {
    n = value;
  } else if (typeof value === 'string') {
    if (value.length > MAX_INT_TEXT || !(allowNegative ? INT_PATTERN : UNSIGNED_PATTERN).test(value)) return undefined;
    n = Number(value);
  } else {
    return undefined;
  }
  if (!Number.isSafeInteger(n) || (!allowNegative && n < 0)) return undefined;
  // -0 would serialize as 0 but compare oddly; normalize it.
  return n === 0 ? 0 : n;
}

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++, n++) {
    // A surrogate pair is one code point (as `for…of` counts).
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

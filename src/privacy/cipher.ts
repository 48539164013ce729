/**
 * How one personal field is sealed: AES-256-GCM (node:crypto) under the data
 * subject's key, a random 96-bit IV per value, and the event's identity
 * (stream, version, event type, field) as additional authenticated data, so a
 * ciphertext opens only in the place it was written for — copied into another
 * event or field, it fails authentication.
 *
 * A sealed value is the string `pd1:<base64(iv ‖ ciphertext ‖ tag)>` in place
 * of the field's JSON value.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** What a sealed field starts with. */
export const SEALED_PREFIX = 'pd1:';
/** What a personal field reads as once its subject's key is destroyed. */
export const ERASED = '[erased]';
/** What a sealed field reads as when its ciphertext does not authenticate (tampered, moved). */
export const UNREADABLE = '[unreadable]';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A data key's length: AES-256. */
export const DATA_KEY_BYTES = 32;

/** The identity a sealed field is bound to. */
export interface FieldIdentity {
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly field: string;
}

/** Random bytes drawn this many at a time: one system call per 341 IVs, not one per IV. @default 4092 */
const IV_POOL_BYTES = IV_BYTES * 341;
let ivPool = Buffer.alloc(0);
let ivAt = 0;

/** A fresh random IV (from a pool of random bytes, each byte used once). */
function randomIv(): Buffer {
  if (ivAt + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivAt = 0;
  }
  const iv = ivPool.subarray(ivAt, ivAt + IV_BYTES);
  ivAt += IV_BYTES;
  return iv;
}

function aad(at: FieldIdentity): Buffer {
  return Buffer.from(`${at.streamId}\n${at.version}\n${at.type}\n${at.field}`, 'utf8');
}

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

/** Seals `value` (any JSON value) for `at` under `key`. */
export function sealValue(key: Buffer, at: FieldIdentity, value: unknown): string {
  const iv = randomIv();
  const cipher = createCipheriv(ALGORITHM, key, iv);
  cipher.setAAD(aad(at));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return SEALED_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/**
 * Opens a value `sealValue` made. Returns `UNREADABLE` when it does not
 * authenticate under `key` and `at` (never throws on bad input).
 */
export function openValue(key: Buffer, at: FieldIdentity, sealed: string): unknown {
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) return UNREADABLE;
  try {
    const decipher = createDecipheriv(ALGORITHM, key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(aad(at));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    return JSON.parse(text) as unknown;
  } catch {
    return UNREADABLE;
  }
}

/**
 * Wraps and unwraps data keys with a master key. Stored data keys are only
 * ever wrapped; the interface is what a KMS or Vault transit engine plugs into
 * (`wrap` = encrypt, `unwrap` = decrypt, bound to the subject).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export interface KeyProvider {
  /** Names the master key (stored beside each wrapped key, so a wrong or rotated master key is recognised). */
  readonly keyId: string;
  /** Encrypts a data key for `subject` (the subject is authenticated: a wrapped key cannot be moved to another subject). */
  wrap(subject: string, dataKey: Buffer): Promise<Buffer>;
  /** @throws when `wrapped` was not made by `wrap(subject, …)` under this master key. */
  unwrap(subject: string, wrapped: Buffer): Promise<Buffer>;
}

/** A master key's length: AES-256. */
export const MASTER_KEY_BYTES = 32;

/**
 * The public development master key, used only in insecure mode when no
 * master key is configured (the shard warns at start-up): it protects nothing.
 */
export const DEV_MASTER_KEY = createHash('sha256').update('shardwrite insecure development master key').digest();

/** A master key from configuration (a file or an environment variable), AES-256-GCM key wrapping. */
export class LocalKeyProvider implements KeyProvider {
  readonly keyId: string;

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== MASTER_KEY_BYTES) throw new Error(`the master key must be ${MASTER_KEY_BYTES} bytes`);
    this.keyId = `local:${createHash('sha256').update(masterKey).digest('hex').slice(0, 16)}`;
  }

  wrap(subject: string, dataKey: Buffer): Promise<Buffer> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    cipher.setAAD(Buffer.from(`subject-key\n${subject}`, 'utf8'));
    const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return Promise.resolve(Buffer.concat([iv, body, cipher.getAuthTag()]));
  }

  unwrap(subject: string, wrapped: Buffer): Promise<Buffer> {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.masterKey, wrapped.subarray(0, 12));
      decipher.setAAD(Buffer.from(`subject-key\n${subject}`, 'utf8'));
      decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
      return Promise.resolve(Buffer.concat([decipher.update(wrapped.subarray(12, wrapped.length - 16)), decipher.final()]));
    } catch {
      return Promise.reject(new Error(`the data key of a subject does not unwrap under master key ${this.keyId}`));
    }
  }
}

/**
 * Reads a master key as configured: base64 of 32 bytes (`PERSONAL_DATA_MASTER_KEY`,
 * or the content of `PERSONAL_DATA_MASTER_KEY_FILE`).
 *
 * @throws when it is not 32 bytes once decoded.
 */
export function parseMasterKey(text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== MASTER_KEY_BYTES) throw new Error(`must be ${MASTER_KEY_BYTES} bytes, base64-encoded (openssl rand -base64 32)`);
  return key;
}

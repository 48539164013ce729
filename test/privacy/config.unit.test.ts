import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadShardConfig } from '../../shard/config.js';
import { DEV_MASTER_KEY } from '../../src/privacy/key-provider.js';
import { expectThrow } from '../support/expect-error.js';

const base = { DATABASE_URL: 'postgres://x/y', RING_DATABASE_URL: 'postgres://x/ring' };
const secure = { TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k', TLS_CA_FILE: 'a', AUTH_TOKENS: `sha256:${'ab'.repeat(32)}:svc::*` };

describe('the personal-data master key', () => {
  it("is required in secure mode with a ring database (where subjects' keys live), as 32 bytes of base64", () => {
    expectThrow(() => loadShardConfig({ ...base, ...secure }), /PERSONAL_DATA_MASTER_KEY or PERSONAL_DATA_MASTER_KEY_FILE is required/);
    expectThrow(() => loadShardConfig({ ...base, ...secure, PERSONAL_DATA_MASTER_KEY: randomBytes(16).toString('base64') }), /must be 32 bytes/);
    const key = randomBytes(32);
    expect(loadShardConfig({ ...base, ...secure, PERSONAL_DATA_MASTER_KEY: key.toString('base64') }).personalData).toMatchObject({ encryption: true, masterKey: key, masterKeyIsDev: false });
  });

  it('is read from PERSONAL_DATA_MASTER_KEY_FILE, never from both settings at once', () => {
    const key = randomBytes(32);
    const file = join(mkdtempSync(join(tmpdir(), 'sw-mk-')), 'master.key');
    writeFileSync(file, `${key.toString('base64url')}\n`);
    expect(loadShardConfig({ ...base, ...secure, PERSONAL_DATA_MASTER_KEY_FILE: file }).personalData.masterKey).toEqual(key);
    expectThrow(() => loadShardConfig({ ...base, ...secure, PERSONAL_DATA_MASTER_KEY_FILE: file, PERSONAL_DATA_MASTER_KEY: key.toString('base64') }), /not both/);
    expectThrow(() => loadShardConfig({ ...base, ...secure, PERSONAL_DATA_MASTER_KEY_FILE: join(tmpdir(), 'no-such-master.key') }), /cannot be read/);
  });

  it('falls back to the public development key only in insecure mode, and is not needed with encryption off', () => {
    expect(loadShardConfig({ ...base, SHARDWRITE_INSECURE: 'true' }).personalData).toMatchObject({ masterKey: DEV_MASTER_KEY, masterKeyIsDev: true });
    expect(loadShardConfig({ ...base, ...secure, PERSONAL_DATA_ENCRYPTION: 'off' }).personalData.encryption).toBe(false);
  });
});

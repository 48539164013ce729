import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactDatabaseUrl, withCredentials, withoutPassword } from '../../src/store/database-url.js';

describe('database URL credentials', () => {
  it('strips the password from the userinfo and the query, keeping user, host and TLS settings', () => {
    expect(withoutPassword('postgres://shard:p%40ss@db:5432/ev?sslmode=verify-full&password=x')).toBe('postgres://shard@db:5432/ev?sslmode=verify-full');
    expect(withoutPassword('postgres://db/ev')).toBe('postgres://db/ev');
  });

  it("puts a process's own user and password into a URL read from the ring", () => {
    expect(withCredentials('postgres://shard0@db:5432/ev?sslmode=verify-full', { user: 'rebalancer', password: 'p@ss/w:rd' })).toBe(
      'postgres://rebalancer:p%40ss%2Fw%3Ard@db:5432/ev?sslmode=verify-full',
    );
    expect(withCredentials('postgres://shard0@db/ev', undefined)).toBe('postgres://shard0@db/ev');
  });

  it('never echoes an unparsable URL', () => {
    expect(redactDatabaseUrl('not a url with secret')).toBe('<invalid database URL>');
  });
});

describe('sslmode in connection URLs (node-postgres 8)', () => {
  const sslOf = (url: string) => (new pg.Client({ connectionString: url }) as unknown as { connectionParameters: { ssl: unknown } }).connectionParameters.ssl;

  it('verify-full with sslrootcert checks the server certificate against that CA and its name against the host', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-pgca-'));
    try {
      const ca = join(dir, 'ca.crt');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n');
      const ssl = sslOf(`postgres://shard@postgres-shard-0-rw:5432/shardwrite?sslmode=verify-full&sslrootcert=${ca}`) as Record<string, unknown>;
      expect(ssl.ca).toContain('placeholder');
      // Node's defaults apply: the chain must verify (rejectUnauthorized) and the name must match (checkServerIdentity).
      expect(ssl.rejectUnauthorized).toBeUndefined();
      expect(ssl.checkServerIdentity).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('no-verify and disable are what they say: never in a deployment', () => {
    expect(sslOf('postgres://h/db?sslmode=no-verify')).toMatchObject({ rejectUnauthorized: false });
    expect(sslOf('postgres://h/db?sslmode=disable')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { redactDatabaseUrl, withCredentials, withoutPassword } from '../../src/store/database-url.js';

describe('database URL credentials', () => {
  it('strips the password from the userinfo and the query, keeping user, host and TLS settings', () => {
    expect(withoutPassword('postgres://shard:p%40ss@db:5432/ev?sslmode=verify-full&password=x')).toBe('postgres://shard@db:5432/ev?sslmode=verify-full');
    expect(withoutPassword('postgres://db/ev')).toBe('postgres://db/ev');
  });

  it('puts a process\'s own user and password into a URL read from the ring', () => {
    expect(withCredentials('postgres://shard0@db:5432/ev?sslmode=verify-full', { user: 'rebalancer', password: 'p@ss/w:rd' })).toBe(
      'postgres://rebalancer:p%40ss%2Fw%3Ard@db:5432/ev?sslmode=verify-full',
    );
    expect(withCredentials('postgres://shard0@db/ev', undefined)).toBe('postgres://shard0@db/ev');
  });

  it('never echoes an unparsable URL', () => {
    expect(redactDatabaseUrl('not a url with secret')).toBe('<invalid database URL>');
  });
});

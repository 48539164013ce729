import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TokenAuthenticator } from '../../src/auth/authenticator.js';
import { IDENTITY_KEYS, identityFrom } from '../../src/auth/identity.js';
import { authInterceptor } from '../../src/auth/interceptor.js';
import { FIXED_PERMISSIONS, permissionTable, type Permission } from '../../src/auth/permissions.js';
import { StaticTokens, tokenEntry } from '../../src/auth/static-tokens.js';
import { modules } from '../../src/domain/index.js';
import { loadPackageDefinition } from '../../src/grpc/proto.js';

/** A server with four tiny methods: one per permission kind, and one the table does not list. */
const identity = (b: Buffer) => b;
const method = (path: string): grpc.MethodDefinition<Buffer, Buffer> => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const PATHS = { pub: '/t.T/Public', cmd: '/t.T/Command', read: '/t.T/Read', admin: '/t.T/Admin', unlisted: '/t.T/Unlisted' } as const;

let server: grpc.Server;
let client: grpc.Client;

beforeAll(async () => {
  const table = new Map<string, Permission>([
    [PATHS.pub, 'public'],
    [PATHS.cmd, 'command'],
    [PATHS.read, 'read'],
    [PATHS.admin, 'admin'],
  ]);
  const tokens = StaticTokens.parse([tokenEntry('writer', 'w', 'ta', ['order-lines']), tokenEntry('reader', 'r', 'ta', ['read']), tokenEntry('root', 'ops', '', ['admin'])].join(',')).tokens;
  server = new grpc.Server({ interceptors: [authInterceptor({ authenticator: new TokenAuthenticator(tokens, undefined), permissions: table })] });
  const echo: grpc.handleUnaryCall<Buffer, Buffer> = (call, cb) => {
    const who = identityFrom((k) => {
      const v = call.metadata.get(k)[0];
      return typeof v === 'string' ? v : undefined;
    });
    cb(null, Buffer.from(who ? `${who.principal}/${who.tenant}` : 'nobody'));
  };
  const defs = Object.fromEntries(Object.entries(PATHS).map(([k, p]) => [k, method(p)]));
  server.addService(defs, Object.fromEntries(Object.keys(PATHS).map((k) => [k, echo])));
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

function call(path: string, token?: string, extra: Record<string, string> = {}): Promise<{ code: grpc.status; body?: string; details?: string }> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return new Promise((resolve) =>
    client.makeUnaryRequest<Buffer, Buffer>(path, identity, identity, Buffer.alloc(0), md, (err, res) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, body: res!.toString() }),
    ),
  );
}

describe('the authentication interceptor', () => {
  it('lets anyone call a public method (health, reflection)', async () => {
    expect(await call(PATHS.pub)).toMatchObject({ code: grpc.status.OK, body: 'nobody' });
  });

  it('refuses a method with no entry in the permission table, whoever calls (deny by default)', async () => {
    for (const token of [undefined, 'writer', 'root']) {
      expect(await call(PATHS.unlisted, token)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    }
  });

  it('refuses a caller without credentials or with an unknown token', async () => {
    expect((await call(PATHS.cmd)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await call(PATHS.cmd, 'nope')).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('checks the read and admin scopes', async () => {
    expect((await call(PATHS.read, 'writer')).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call(PATHS.read, 'reader')).toMatchObject({ code: grpc.status.OK, body: 'r/ta' });
    expect((await call(PATHS.admin, 'writer')).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call(PATHS.admin, 'reader')).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call(PATHS.admin, 'root')).toMatchObject({ code: grpc.status.OK, body: 'ops/' });
  });

  it('replaces identity metadata a caller forged with the verified identity', async () => {
    const forged = { [IDENTITY_KEYS.principal]: 'mallory', [IDENTITY_KEYS.tenant]: 'victim', [IDENTITY_KEYS.scopes]: '*' };
    expect(await call(PATHS.cmd, 'writer', forged)).toMatchObject({ code: grpc.status.OK, body: 'w/ta' });
    expect(await call(PATHS.pub, undefined, forged)).toMatchObject({ code: grpc.status.OK, body: 'nobody' });
  });
});

describe('the permission table', () => {
  it('has an entry for every method of every service the router and shards serve', () => {
    const table = permissionTable(modules);
    const definition = loadPackageDefinition();
    const missing: string[] = [];
    for (const entry of Object.values(definition)) {
      if (typeof entry !== 'object' || entry === null || 'format' in entry) continue;
      for (const m of Object.values(entry as Record<string, { path?: string }>)) if (m.path && !table.has(m.path)) missing.push(m.path);
    }
    expect(missing).toEqual([]);
  });

  it('leaves health and reflection public and nothing else', () => {
    const open = Object.entries(FIXED_PERMISSIONS)
      .filter(([, p]) => p === 'public')
      .map(([path]) => path);
    expect(open.every((p) => p.startsWith('/grpc.health.v1.') || p.startsWith('/grpc.reflection.'))).toBe(true);
  });
});

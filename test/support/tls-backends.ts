/**
 * PostgreSQL and Redis servers of a test's own that speak TLS with a
 * certificate the test gives them, so a test can prove a process reaches its
 * stores over verified TLS (`sslmode=verify-full`, `rediss://` with a CA).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tls from 'node:tls';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';
import type { CertFiles } from '../../scripts/dev-certificates.js';
import { freePort } from './postgres-process.js';

export interface TlsBackend {
  readonly port: number;
  stop(): Promise<void>;
}

export interface TlsPostgres extends TlsBackend {
  /** The superuser's URL of database `postgres`, plaintext allowed (for setting up). */
  readonly adminUrl: string;
}

/**
 * An embedded PostgreSQL serving TLS with `files` (certificate and key; the
 * server's name must be in the certificate), plaintext still accepted: a test
 * checks `pg_stat_ssl` for the sessions it cares about.
 */
export async function startTlsPostgres(files: CertFiles): Promise<TlsPostgres> {
  const dataDir = resolve(`.data/test-tls-pg-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const server = await startEmbeddedPostgres({ dataDir, port });
  // PostgreSQL reads its key only when the server's own user owns it, readable by nobody else.
  const owner = statSync(dataDir);
  for (const [from, to] of [
    [files.certFile, 'server.crt'],
    [files.keyFile, 'server.key'],
  ] as const) {
    copyFileSync(from, join(dataDir, to));
    chownSync(join(dataDir, to), owner.uid, owner.gid);
  }
  chmodSync(join(dataDir, 'server.key'), 0o600);
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`ALTER SYSTEM SET ssl = 'on'`);
    await admin.query('SELECT pg_reload_conf()');
    for (let i = 0; i < 50 && (await admin.query<{ ssl: string }>('SHOW ssl')).rows[0]!.ssl !== 'on'; i++) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await admin.end();
  }
  return {
    port,
    adminUrl: server.url,
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether `redis-server` is on PATH. */
export const REDIS_SERVER_AVAILABLE = spawnSync('redis-server', ['--version']).status === 0;

/**
 * A TLS-only redis-server on 127.0.0.1 with `files`' certificate (clients are
 * not asked for one), its default user off and one ACL user `user` with every
 * permission.
 */
export async function startTlsRedis(files: CertFiles, user: string, password: string, dir: string): Promise<TlsBackend> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    [
      ...['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1'],
      ...['--tls-cert-file', files.certFile, '--tls-key-file', files.keyFile, '--tls-ca-cert-file', files.caFile, '--tls-auth-clients', 'no'],
      ...['--save', '', '--appendonly', 'no', '--dir', dir],
      ...['--user', 'default', 'off', '--user', user, 'on', `>${password}`, '~*', '+@all'],
    ],
    { stdio: 'ignore' },
  );
  // Up once it completes a TLS handshake.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((res) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(files.caFile) }, () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (up) break;
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill('SIGKILL');
      throw new Error('redis-server did not start with TLS');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    async stop() {
      if (server.exitCode !== null) return;
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await exited;
    },
  };
}

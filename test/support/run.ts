/**
 * Runs a command to its end without blocking the test worker, and returns
 * its standard output; a failure throws with the command's output.
 *
 * Why not execFileSync: a worker blocked for a minute (an `npm pack`, an
 * install, a build, on a loaded machine) misses the answer to its own RPC
 * to vitest's main process, and vitest fails the run with "Timeout calling
 * onTaskUpdate" although every test passed (vitest#8164; seen in a full
 * `.ci/run`).
 */
import { execFile } from 'node:child_process';

export function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { ...options, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed (${err.code ?? err.signal ?? err.message}):\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * Tools CI installs (.ci/run) but a developer's machine may lack: a check
 * that needs one is skipped without it locally, and fails in CI, where the
 * tool's absence means the install step broke.
 */
import { spawnSync } from 'node:child_process';

/** Whether this is a CI run (`CI=true`, as CI starts .ci/run). */
export const IN_CI = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());

/** Whether `command args…` runs and exits 0 (e.g. `protoc --version`). */
export function toolRuns(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/**
 * For a check that needs `tool`: returns whether to skip it. Without the tool
 * that is a note locally and an error in CI.
 * @throws in CI when the tool is missing
 */
export function skipWithout(tool: string, available: boolean, what: string): boolean {
  if (available) return false;
  if (IN_CI) throw new Error(`${tool} is not installed, but CI must run ${what} (.ci/run installs it)`);
  console.log(`[tests] ${tool} not installed: ${what} is skipped (.ci/run installs it)`);
  return true;
}

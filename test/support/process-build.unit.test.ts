/**
 * The build the end-to-end tests start processes from: it holds every
 * entry point they start, and a run that ended without removing its build
 * (killed) leaves nothing behind for long.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildProcesses, removeProcessBuild } from './process-build.js';

const BUILDS = resolve(import.meta.dirname, '../../.data/process-build');
const made: string[] = [];

afterAll(() => {
  for (const dir of made) removeProcessBuild(dir);
});

it('holds the services, the examples and the tests’ own helper processes, as JavaScript', async () => {
  const dir = await buildProcesses();
  made.push(dir);
  for (const entry of ['shard/main.js', 'router/main.js', 'pm-worker/main.js', 'relay/main.js', 'examples/order-summary/main.js', 'test/consumer-groups/support/member-process.js']) {
    expect(existsSync(join(dir, entry)), entry).toBe(true);
  }
  expect(existsSync(join(dir, 'node_modules'))).toBe(false);
});

it('removes the builds of runs whose process is gone, and keeps those of runs still going', async () => {
  const dead = join(BUILDS, '2147483646-gone');
  const alive = join(BUILDS, `${process.pid}-still-running`);
  mkdirSync(dead, { recursive: true });
  mkdirSync(alive, { recursive: true });
  made.push(alive);
  made.push(await buildProcesses());
  expect(existsSync(dead)).toBe(false);
  expect(existsSync(alive)).toBe(true);
});

/**
 * The code the end-to-end tests start processes from (services, examples,
 * the tests' own helper processes): every TypeScript file of the checkout
 * outside node_modules and dist/, transpiled once per test run (esbuild, the
 * transform tsx applies to each file as it loads, with inline source maps)
 * into a folder of the checkout, so packages resolve as from the sources. A
 * process started from it skips tsx's loader: about 0.5 s of CPU per start,
 * and the suite starts a few hundred.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
/** Folders of the checkout that hold no sources of ours. */
const NOT_SOURCES = new Set(['node_modules', 'dist']);
/** Where `startProcess` finds the build of this run, when there is one. */
export const PROCESS_BUILD_ENV = 'SHARDWRITE_PROCESS_BUILD';

const BUILDS = join(ROOT, '.data', 'process-build');

/**
 * Transpiles the sources into a new folder under `.data/process-build/`, and
 * returns it; first removes the builds of runs that ended without removing
 * theirs (their process is gone).
 */
export async function buildProcesses(): Promise<string> {
  mkdirSync(BUILDS, { recursive: true });
  for (const name of readdirSync(BUILDS)) if (!running(Number(name.split('-')[0]))) removeProcessBuild(join(BUILDS, name));
  const outdir = join(BUILDS, `${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(outdir);
  const folders = readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.') && !NOT_SOURCES.has(e.name));
  const entryPoints = folders.flatMap(({ name: folder }) =>
    readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && !file.split(sep).includes('node_modules'))
      .map((file) => join(ROOT, folder, file)),
  );
  const { build } = await import('esbuild');
  await build({ entryPoints, outdir, outbase: ROOT, format: 'esm', platform: 'node', target: 'node20', sourcemap: 'inline', logLevel: 'error' });
  return outdir;
}

function running(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function removeProcessBuild(outdir: string): void {
  rmSync(outdir, { recursive: true, force: true });
}

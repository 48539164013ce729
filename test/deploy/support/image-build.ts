/**
 * Replays the Dockerfile without Docker: each stage gets a folder standing in
 * for its root filesystem; COPY copies from the build context (as
 * .dockerignore leaves it) or from an earlier stage; `npm ci` is replaced by
 * links to this checkout's installed packages — only the production ones
 * (per package-lock.json) when the command omits dev dependencies; `npm run
 * <script>` runs for real; `mkdir` makes directories. Any other RUN fails the replay, which keeps the
 * Dockerfile to steps this replay can vouch for.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import type { Dockerfile, Instruction } from './dockerfile.js';
import { envPairs } from './dockerfile.js';
import { run } from '../../support/run.js';

export interface ReplayedImage {
  /** The folder standing in for the final image's `/`. */
  readonly root: string;
  /** The final stage's WORKDIR, as a path inside `root`. */
  readonly workdir: string;
  /** The final stage's ENV. */
  readonly env: Readonly<Record<string, string>>;
  /** The final stage's USER. */
  readonly user: string | undefined;
  /** Maps a path inside the image (`/app/bin/x.js`) to the folder standing in for it. */
  hostPath(imagePath: string): string;
  /** Top-level package names in the final image's node_modules (scoped ones as `@scope/name`). */
  readonly packages: readonly string[];
  remove(): void;
}

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
}

/**
 * Replays `df` with `contextFiles` (paths relative to `contextRoot`) as the
 * build context; the installed packages come from `contextRoot/node_modules`
 * and the lockfile from the context.
 */
export async function replayImage(df: Dockerfile, contextRoot: string, contextFiles: readonly string[], log: (line: string) => void = () => {}): Promise<ReplayedImage> {
  const tmp = mkdtempSync(join(tmpdir(), 'sw-image-'));
  const context = new Set(contextFiles);
  const stageRoots = new Map<string, string>();
  let root = '';
  let workdir = '/';
  let env: Record<string, string> = {};
  let user: string | undefined;

  const inStage = (r: string, p: string) => join(r, posix.resolve(workdir, p));
  const fail = (ins: Instruction, why: string): never => {
    throw new Error(`Dockerfile line ${ins.line} (${ins.keyword} ${ins.args}): ${why}`);
  };

  try {
    for (const [index, stage] of df.stages.entries()) {
      root = join(tmp, `stage-${index}`);
      mkdirSync(root, { recursive: true });
      if (stage.name) stageRoots.set(stage.name, root);
      workdir = '/';
      env = {};
      user = undefined;
      for (const ins of stage.instructions) {
        switch (ins.keyword) {
          case 'WORKDIR':
            workdir = posix.resolve(workdir, ins.args);
            mkdirSync(join(root, workdir), { recursive: true });
            break;
          case 'ENV':
            for (const [k, v] of envPairs(ins)) env[k] = v;
            break;
          case 'USER':
            user = ins.args;
            break;
          case 'COPY': {
            const parts = ins.exec ?? ins.args.split(/\s+/);
            const dest = parts[parts.length - 1]!;
            const sources = parts.slice(0, -1);
            const from = ins.flags.from;
            const destPath = inStage(root, dest);
            const intoDir = dest.endsWith('/') || sources.length > 1;
            for (const src of sources) {
              let srcPath: string;
              if (from !== undefined) {
                const fromRoot = stageRoots.get(from) ?? fail(ins, `no stage named ${from}`);
                srcPath = join(fromRoot, posix.resolve('/', src));
                if (!existsSync(srcPath)) fail(ins, `${src} does not exist in stage ${from}`);
              } else {
                const rel = posix.normalize(src).replace(/^\.\//, '').replace(/\/$/, '');
                const files = contextFiles.filter((f) => f === rel || f.startsWith(`${rel}/`));
                if (files.length === 0) fail(ins, `${src} is not in the build context (.dockerignore)`);
                if (context.has(rel)) {
                  srcPath = join(contextRoot, rel);
                } else {
                  // A folder: only the files the context holds.
                  srcPath = join(tmp, 'context', rel);
                  for (const f of files) {
                    mkdirSync(dirname(join(tmp, 'context', f)), { recursive: true });
                    cpSync(join(contextRoot, f), join(tmp, 'context', f));
                  }
                }
              }
              const isDir = statSync(srcPath).isDirectory();
              const target = isDir ? destPath : intoDir ? join(destPath, posix.basename(src)) : destPath;
              mkdirSync(isDir ? target : dirname(target), { recursive: true });
              cpSync(srcPath, target, { recursive: true, verbatimSymlinks: true });
            }
            break;
          }
          case 'RUN': {
            const cwd = join(root, workdir);
            // Commands joined by && run in order, each one of the kinds the replay knows.
            for (const command of (ins.exec?.join(' ') ?? ins.args).split(/\s+&&\s+/)) {
              if (/^npm ci\b/.test(command)) {
                const omit = new Set([...command.matchAll(/--omit[= ](\w+)/g)].map((m) => m[1]));
                if (!/--ignore-scripts\b/.test(command)) fail(ins, 'install with --ignore-scripts (no package needs its install script in the image)');
                installPackages(contextRoot, cwd, omit.has('dev'), omit.has('optional'));
                log(`RUN ${command}: linked ${omit.size > 0 ? `packages without ${[...omit].join(', ')}` : 'every package'}`);
              } else if (/^npm run [\w:-]+$/.test(command)) {
                log(`RUN ${command}`);
                await run('npm', command.split(' ').slice(1), { cwd, env: { ...process.env, ...env } });
              } else if (/^mkdir( -p)?( \/[\w./-]+)+$/.test(command)) {
                log(`RUN ${command}`);
                for (const dir of command
                  .split(' ')
                  .slice(1)
                  .filter((a) => a !== '-p'))
                  mkdirSync(join(root, dir), { recursive: true });
              } else {
                fail(ins, 'only `npm ci …`, `npm run <script>` and `mkdir [-p] /absolute/path…` can be replayed');
              }
            }
            break;
          }
          case 'ARG':
          case 'EXPOSE':
          case 'ENTRYPOINT':
          case 'CMD':
          case 'LABEL':
          case 'STOPSIGNAL':
            break;
          default:
            fail(ins, 'not replayable');
        }
      }
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }

  const finalRoot = root;
  const nm = join(finalRoot, posix.resolve(workdir, 'node_modules'));
  const packages = existsSync(nm) ? readdirSync(nm).flatMap((e) => (e.startsWith('@') ? readdirSync(join(nm, e)).map((n) => `${e}/${n}`) : e.startsWith('.') ? [] : [e])) : [];
  return {
    root: finalRoot,
    workdir: join(finalRoot, workdir),
    env: { ...env },
    user,
    packages,
    hostPath: (p) => join(finalRoot, posix.resolve(workdir, p)),
    remove: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** `npm ci` stand-in: links the lockfile's top-level packages from the checkout's node_modules. */
function installPackages(checkout: string, cwd: string, omitDev: boolean, omitOptional: boolean): void {
  const lock = JSON.parse(readFileSync(join(cwd, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const installed = join(checkout, 'node_modules');
  if (!omitDev && !omitOptional) {
    symlinkSync(installed, join(cwd, 'node_modules'), 'dir');
    return;
  }
  mkdirSync(join(cwd, 'node_modules'), { recursive: true });
  for (const [key, pkg] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || key.slice('node_modules/'.length).includes('/node_modules/')) continue;
    if (omitDev && pkg.dev) continue;
    if (omitOptional && pkg.optional) continue;
    if (omitDev && omitOptional && pkg.devOptional) continue;
    const name = key.slice('node_modules/'.length);
    const source = join(installed, name);
    if (!existsSync(source)) {
      if (pkg.optional) continue; // Another platform's build.
      throw new Error(`${name} is in package-lock.json but not installed: run npm ci`);
    }
    mkdirSync(dirname(join(cwd, 'node_modules', name)), { recursive: true });
    symlinkSync(source, join(cwd, 'node_modules', name), 'dir');
  }
}

/**
 * Reads a Dockerfile and a .dockerignore the way `docker build` does, for the
 * deployment checks: stages, instructions with their flags, ENV, EXPOSE,
 * ENTRYPOINT/CMD, and the build context the ignore file leaves. The Dockerfile
 * is parsed by `dockerfile-ast` (the parser of the VS Code Docker language
 * server) and `.dockerignore` is matched by `@balena/dockerignore` (Docker's
 * own matching rules, as docker-modem uses them for build contexts); this
 * module only shapes their results.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, Env, JSONInstruction, ModifiableInstruction, type From } from 'dockerfile-ast';
import dockerignoreModule from '@balena/dockerignore';

// A CommonJS module whose types declare an ES default export: the factory is `default` on it (it sets that for TypeScript).
const dockerignore = dockerignoreModule.default;

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, … */
  readonly keyword: string;
  /** `--name=value` flags in front of the arguments (COPY --from, RUN --mount, …). */
  readonly flags: Readonly<Record<string, string>>;
  /** The arguments after the flags, one space between them (continuations joined). */
  readonly args: string;
  /** The exec (JSON array) form, when the arguments are one. */
  readonly exec: readonly string[] | undefined;
  /** ENV only: its name/value pairs, quotes and escapes resolved. */
  readonly env: readonly (readonly [string, string])[];
  readonly line: number;
}

export interface Stage {
  readonly name: string | undefined;
  /** The base image with build arguments substituted. */
  readonly from: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>;
  readonly stages: readonly Stage[];
  readonly all: readonly Instruction[];
}

export function parseDockerfile(text: string): Dockerfile {
  const parsed = DockerfileParser.parse(text);
  const globalArgs: Record<string, string> = {};
  for (const arg of parsed.getInitialARGs()) {
    const p = arg.getProperty();
    if (p) globalArgs[p.getName()] = p.getValue() ?? '';
  }
  const all: Instruction[] = [];
  const stages: { name: string | undefined; from: string; instructions: Instruction[] }[] = [];
  for (const node of parsed.getInstructions()) {
    const ins = toInstruction(node);
    all.push(ins);
    if (ins.keyword === 'FROM') stages.push({ name: (node as From).getBuildStage() ?? undefined, from: baseImage(node as From, globalArgs, ins.line), instructions: [] });
    else if (stages.length > 0) stages[stages.length - 1]!.instructions.push(ins);
    else if (ins.keyword !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`);
  }
  return { globalArgs, stages, all };
}

function toInstruction(node: ReturnType<ReturnType<typeof DockerfileParser.parse>['getInstructions']>[number]): Instruction {
  const flags = node instanceof ModifiableInstruction ? Object.fromEntries(node.getFlags().map((f) => [f.getName(), f.getValue() ?? 'true'])) : {};
  const exec = node instanceof JSONInstruction && node.getOpeningBracket() !== null ? node.getJSONStrings().map((s) => s.getJSONValue()) : undefined;
  const env = node instanceof Env ? node.getProperties().map((p) => [p.getName(), p.getValue() ?? ''] as const) : [];
  return {
    keyword: node.getKeyword().toUpperCase(),
    flags,
    args: node
      .getArguments()
      .map((a) => a.getValue())
      .join(' '),
    exec,
    env,
    line: node.getRange().start.line + 1,
  };
}

/** FROM's image with the global ARGs substituted (a build argument without a default is an error). */
function baseImage(from: From, globalArgs: Readonly<Record<string, string>>, line: number): string {
  return (from.getImage() ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
    const v = globalArgs[(a ?? b)!];
    if (v === undefined) throw new Error(`Dockerfile line ${line}: ARG ${a ?? b} has no default`);
    return v;
  });
}

/** `ENV a=b c="d e"` (and the legacy `ENV a b`) → pairs. */
export function envPairs(ins: Instruction): [string, string][] {
  return ins.env.map(([k, v]) => [k, v]);
}

/** The final stage's ENV, in order. */
export function imageEnv(df: Dockerfile): Record<string, string> {
  const last = df.stages[df.stages.length - 1]!;
  return Object.fromEntries(last.instructions.filter((i) => i.keyword === 'ENV').flatMap(envPairs));
}

/** The final stage's EXPOSEd TCP ports. */
export function exposedPorts(df: Dockerfile): number[] {
  const last = df.stages[df.stages.length - 1]!;
  return last.instructions
    .filter((i) => i.keyword === 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/))
    .map((p) => Number(p.replace(/\/tcp$/, '')));
}

/** What `docker run IMAGE ...args` executes: ENTRYPOINT followed by the args, or by CMD when there are none. */
export function entryArgv(df: Dockerfile, args: readonly string[] | undefined): string[] {
  const last = df.stages[df.stages.length - 1]!;
  const entry = [...last.instructions].reverse().find((i) => i.keyword === 'ENTRYPOINT');
  const cmd = [...last.instructions].reverse().find((i) => i.keyword === 'CMD');
  if (!entry?.exec) throw new Error('the image needs an ENTRYPOINT in exec (JSON) form');
  return [...entry.exec, ...(args ?? cmd?.exec ?? [])];
}

/**
 * The files `docker build` sends with `.dockerignore` applied (Docker's
 * matching: a pattern covers a path and what lies below it, the last matching
 * one wins, `!` re-includes). Excluded folders that no exception reaches into
 * are not walked (node_modules, .git).
 */
export function buildContext(root: string, ignoreText: string): string[] {
  const lines = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const ignore = dockerignore({ ignorecase: false }).add(lines);
  const exceptions = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/^\/+/, ''));
  const exceptionsCouldReach = (dir: string): boolean => exceptions.some((e) => e.startsWith('*') || e.startsWith(`${dir}/`) || e === dir);

  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (ignore.ignores(path) && !exceptionsCouldReach(path)) continue;
        walk(path);
      } else if (!ignore.ignores(path)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files.sort();
}

/**
 * Reads a Dockerfile and a .dockerignore the way `docker build` does, for the
 * deployment checks: stages, instructions with their flags, ENV, EXPOSE,
 * ENTRYPOINT/CMD, and the build context the ignore file leaves.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, … */
  readonly keyword: string;
  /** `--name=value` flags in front of the arguments (COPY --from, RUN --mount, …). */
  readonly flags: Readonly<Record<string, string>>;
  /** The arguments after the flags, as written (continuations joined). */
  readonly args: string;
  /** The exec (JSON array) form, when the arguments are one. */
  readonly exec: readonly string[] | undefined;
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
  const all: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let logical = lines[i]!;
    if (/^\s*(#|$)/.test(logical)) continue;
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      logical = logical.replace(/\\\s*$/, ' ');
      i++;
      // Comment lines inside a continued instruction are dropped, as docker does.
      if (!/^\s*#/.test(lines[i]!)) logical += lines[i]!;
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(logical);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot read "${logical}"`);
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest); f; f = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)) {
      flags[f[1]!] = f[2] ?? 'true';
      rest = rest.slice(f[0].length);
    }
    let exec: string[] | undefined;
    if (rest.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(rest);
        if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) exec = parsed;
      } catch {
        // Not JSON: shell form, as docker treats it.
      }
    }
    all.push({ keyword: m[1]!.toUpperCase(), flags, args: rest, exec, line: start });
  }

  const globalArgs: Record<string, string> = {};
  const stages: { name: string | undefined; from: string; instructions: Instruction[] }[] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      const from = image!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
        const v = globalArgs[(a ?? b)!];
        if (v === undefined) throw new Error(`Dockerfile line ${ins.line}: ARG ${a ?? b} has no default`);
        return v;
      });
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, from, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`);
      const [k, v] = ins.args.split('=');
      globalArgs[k!] = v ?? '';
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages, all };
}

/** `ENV a=b c="d e"` (and the legacy `ENV a b`) → pairs. */
export function envPairs(ins: Instruction): [string, string][] {
  if (!ins.args.includes('=')) {
    const [k, ...v] = ins.args.split(/\s+/);
    return [[k!, v.join(' ')]];
  }
  const out: [string, string][] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (let m = re.exec(ins.args); m; m = re.exec(ins.args)) {
    const raw = m[2]!;
    out.push([m[1]!, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw.startsWith("'") ? raw.slice(1, -1) : raw]);
  }
  return out;
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
 * The files `docker build` sends with `.dockerignore` applied: patterns are
 * matched against each path and its parent folders, the last matching one
 * wins, and `!` re-includes. Excluded folders that no exception reaches into
 * are not walked (node_modules, .git).
 */
export function buildContext(root: string, ignoreText: string): string[] {
  const rules = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, pattern, re: patternToRegExp(pattern) };
    });
  const excluded = (path: string): boolean => {
    const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let out = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) out = !r.negate;
    return out;
  };
  const exceptionsCouldReach = (dir: string): boolean => rules.some((r) => r.negate && (r.pattern.startsWith('*') || r.pattern.startsWith(`${dir}/`) || r.pattern === dir));

  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (excluded(path) && !exceptionsCouldReach(path)) continue;
        walk(path);
      } else if (!excluded(path)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files.sort();
}

function patternToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else {
        re += '.*';
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

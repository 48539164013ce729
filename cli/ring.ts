/**
 * `shardwrite ring …`: show the ring, add or remove a shard (a rebalance,
 * src/rebalance), abandon a move before its switch-over, the status of a move,
 * and bind a shard whose store is lost to a new one. Each subcommand returns its exit
 * code: 0 done (or nothing to do), 1 failed (a move can be resumed by running
 * the same command again), 2 bad usage, 130 interrupted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PgRingStore, ringToJson, type RingDocument } from '../src/ring/index.js';
import { EnvReader, text } from '../src/config.js';
import { TLS_SETTINGS, clientCredentials, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';
import { redactDatabaseUrl, type StoreCredentials } from '../src/store/database-url.js';
import {
  MoveInProgressError,
  PgMoveStore,
  RebalanceError,
  Rebalancer,
  commandOf,
  describeMove,
  formatCount,
  formatDuration,
  progressBar,
  progressLine,
  type MoveProgress,
  type MoveRecord,
  type MoveRequest,
} from '../src/rebalance/index.js';

/** Where `npm start` records the cluster it runs (relative to the working directory). */
export const CLUSTER_FILE = '.data/cluster.json';

export const RING_USAGE = `  ring show [--json]    print the current ring
  ring status [--json]  the current epoch and the move in progress (or the last one)
  ring add <id> --address host:port [--database-url URL] [--pause-ms N]
                        put a running shard on the ring: moves the streams it now owns to it
  ring remove <id> [--pause-ms N]
                        move a shard's streams to their new owners, then take it off the ring
  ring abort            abandon the unfinished add or remove before it switches the ring: streams
                        stay with their old owners, copies are removed, the old ring is republished
  ring rebind <id> --database-url URL
                        bind a shard whose event store is lost to a new, empty store (refused while
                        the old store answers, or when the new one holds anything); the lost events
                        are not recovered: start the shard on the new store afterwards
  (ring commands use RING_DATABASE_URL, or .data/cluster.json from npm start; an interrupted
   add or remove is resumed by running the same command again, or abandoned with ring abort; with
   TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE set (the rebalancer's certificate) the new shard's
   health check uses TLS; the ring database holds no passwords: SHARD_DATABASE_USER and
   SHARD_DATABASE_PASSWORD_FILE (or PGPASSWORD) give the rebalancer's own login to the shards' stores)`;

/** Where a command writes. */
export interface Output {
  /** One finished line. */
  line(text: string): void;
  /** One line on stderr. */
  error(text: string): void;
  /** Rewrites the current terminal line (only called when `tty`). */
  overwrite?(text: string): void;
  /** Whether stdout is a terminal (progress bar) or not (plain lines). */
  readonly tty: boolean;
}

/** The process's stdout / stderr. */
export function consoleOutput(): Output {
  return {
    line: (text) => console.log(text),
    error: (text) => console.error(text),
    overwrite: (text) => process.stdout.write(`\r${text}\x1b[K`),
    tty: process.stdout.isTTY === true,
  };
}

interface Flags {
  readonly positional: string[];
  readonly values: Map<string, string>;
  readonly switches: Set<string>;
}

const VALUE_FLAGS = new Set(['--address', '--database-url', '--pause-ms', '--batch-streams']);
const SWITCHES = new Set(['--json']);

function parse(args: readonly string[]): Flags | string {
  const positional: string[] = [];
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_FLAGS.has(a)) {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) return `${a} needs a value`;
      values.set(a, v);
    } else if (SWITCHES.has(a)) switches.add(a);
    else if (a.startsWith('--')) return `unknown option ${a}`;
    else positional.push(a);
  }
  return { positional, values, switches };
}

function positiveInt(flags: Flags, name: string): number | undefined | string {
  const raw = flags.values.get(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return /^\d+$/.test(raw) && Number.isSafeInteger(n) ? n : `${name} must be a whole number (got "${raw}")`;
}

/**
 * Runs `shardwrite ring <args>` and resolves with the exit code. `signal`
 * stops a move between two steps (Ctrl-C); it resumes when run again.
 */
export async function ringCommand(args: readonly string[], env: NodeJS.ProcessEnv, out: Output, signal?: AbortSignal): Promise<number> {
  const [sub, ...rest] = args;
  const flags = parse(rest);
  if (typeof flags === 'string') return usage(out, flags);
  const url = env.RING_DATABASE_URL || ringUrlFromClusterFile();
  if (sub !== 'show' && sub !== 'status' && sub !== 'add' && sub !== 'remove' && sub !== 'abort' && sub !== 'rebind') return usage(out);
  if (!url) {
    out.error(`no ring database: set RING_DATABASE_URL, or run \`npm start\` (which writes ${CLUSTER_FILE})`);
    return 2;
  }
  switch (sub) {
    case 'show':
      if (flags.positional.length > 0 || flags.values.size > 0) return usage(out);
      return show(url, flags.switches.has('--json'), out);
    case 'status':
      if (flags.positional.length > 0 || flags.values.size > 0) return usage(out);
      return status(url, flags.switches.has('--json'), out);
    case 'abort':
      if (flags.positional.length > 0 || flags.values.size > 0 || flags.switches.size > 0) return usage(out, 'ring abort takes no arguments');
      return abort(url, out, signal);
    case 'rebind': {
      const [shardId, ...extra] = flags.positional;
      const databaseUrl = flags.values.get('--database-url');
      if (!shardId || extra.length > 0 || flags.switches.size > 0) return usage(out, shardId ? undefined : 'ring rebind needs a shard id');
      if (!databaseUrl || flags.values.size > 1) return usage(out, 'ring rebind takes a shard id and --database-url URL (the new, empty store) only');
      const settings = rebalancerSettings(env, out);
      if (typeof settings === 'number') return settings;
      return rebind(url, shardId, databaseUrl, settings.storeCredentials, out);
    }
    case 'add':
    case 'remove': {
      const [shardId, ...extra] = flags.positional;
      if (!shardId || extra.length > 0 || flags.switches.size > 0) return usage(out, shardId ? undefined : `ring ${sub} needs a shard id`);
      const address = flags.values.get('--address');
      const databaseUrl = flags.values.get('--database-url');
      if (sub === 'add' && !address) return usage(out, 'ring add needs --address host:port (where routers reach the new shard)');
      if (sub === 'remove' && (address || databaseUrl)) return usage(out, 'ring remove takes only a shard id');
      const pauseMs = positiveInt(flags, '--pause-ms');
      const batchStreams = positiveInt(flags, '--batch-streams');
      if (typeof pauseMs === 'string') return usage(out, pauseMs);
      if (typeof batchStreams === 'string') return usage(out, batchStreams);
      const request: MoveRequest = sub === 'add' ? { kind: 'add', shardId, address: address! } : { kind: 'remove', shardId };
      const settings = rebalancerSettings(env, out);
      if (typeof settings === 'number') return settings;
      return move(url, request, { pauseMs, batchStreams, databaseUrl }, settings.tls, settings.storeCredentials, out, signal);
    }
  }
}

/** The rebalancer's TLS settings and store login from the environment, or exit code 2 after printing what is wrong. */
function rebalancerSettings(env: NodeJS.ProcessEnv, out: Output): { tls: TlsSettings | undefined; storeCredentials: StoreCredentials | undefined } | number {
  // Without TLS settings of its own, and on npm start's cluster: the rebalancer certificate `npm start -- --secure` made.
  const reader = new EnvReader(env.TLS_CERT_FILE || env.RING_DATABASE_URL ? env : { ...rebalancerTlsFromClusterFile(), ...env }, { ...TLS_SETTINGS, ...STORE_CREDENTIAL_SETTINGS });
  const tls = readTlsSettings(reader);
  const storeCredentials = readStoreCredentials(reader);
  try {
    reader.done();
  } catch (err) {
    out.error((err as Error).message);
    return 2;
  }
  return { tls, storeCredentials };
}

function usage(out: Output, problem?: string): number {
  if (problem) out.error(problem);
  out.error(`usage:\n${RING_USAGE}`);
  return 2;
}

async function show(url: string, json: boolean, out: Output): Promise<number> {
  const store = new PgRingStore({ connectionString: url });
  try {
    const ring = await store.current();
    if (!ring) {
      out.error('the ring database has no ring yet');
      return 1;
    }
    if (json) out.line(ringToJson(ring));
    else printRing(ring, out);
    return 0;
  } finally {
    await store.close();
  }
}

function printRing(ring: RingDocument, out: Output): void {
  out.line(`ring epoch ${ring.epoch}, ${ring.shards.length} shard${ring.shards.length === 1 ? '' : 's'}`);
  const width = Math.max(...ring.shards.map((s) => s.id.length));
  for (const s of ring.shards) out.line(`  ${s.id.padEnd(width)}  ${s.address}`);
}

async function status(url: string, json: boolean, out: Output): Promise<number> {
  const store = new PgRingStore({ connectionString: url });
  const moves = new PgMoveStore(url);
  try {
    // The move columns this release reads (an older cluster's ring database may lack them); idempotent.
    await store.migrate();
    const ring = await store.current();
    const latest = await moves.latest();
    if (json) {
      out.line(
        JSON.stringify({
          epoch: ring?.epoch ?? 0,
          shards: ring?.shards.map((s) => ({ id: s.id, address: s.address })) ?? [],
          move: latest ? moveJson(latest) : null,
        }),
      );
      return 0;
    }
    if (ring) printRing(ring, out);
    else out.line('the ring database has no ring yet');
    if (!latest) {
      out.line('no move in progress; none ever ran');
    } else if (latest.finishedAt === undefined) {
      const f = latest.figures;
      out.line(`move in progress: ${describeMove(latest)} → epoch ${latest.targetEpoch}, phase ${latest.phase} (started ${formatDuration(latest.ageMs)} ago)`);
      out.line(
        `  ${formatCount(f.streamsTotal)} streams to move, ${formatCount(f.streamsCopied)} copied, ${formatCount(f.streamsSealed)} sealed, ` +
          `${formatCount(f.streamsCleaned)} old copies deleted, ${formatCount(f.eventsCopied)} events copied`,
      );
      if (latest.abortedPhase !== undefined) {
        out.line(`  an abort of it (from phase ${latest.abortedPhase}) did not finish: run \`shardwrite ring abort\` again`);
      } else {
        out.line(`  resume or finish it with: ${commandOf(latest)}`);
        out.line('  or abandon it (before it switches the ring) with: shardwrite ring abort');
      }
    } else if (latest.abortedAt !== undefined) {
      out.line(
        `no move in progress; the last one, ${describeMove(latest)} → epoch ${latest.targetEpoch}, was aborted in phase ${latest.abortedPhase ?? latest.phase} ` +
          `${formatDuration(latest.ageMs - (latest.abortedAt.getTime() - latest.startedAt.getTime()))} ago (epoch ${latest.targetEpoch} kept the old shards)`,
      );
    } else {
      const f = latest.figures;
      out.line(
        `no move in progress; the last one, ${describeMove(latest)} → epoch ${latest.targetEpoch}, moved ${formatCount(f.streamsTotal)} streams ` +
          `in ${formatDuration(totalMs(latest))} and finished ${formatDuration(latest.ageMs - (latest.finishedAt.getTime() - latest.startedAt.getTime()))} ago`,
      );
    }
    return 0;
  } finally {
    await moves.close();
    await store.close();
  }
}

function totalMs(move: MoveRecord): number {
  return Object.values(move.figures.phaseMs).reduce((a, b) => a + (b ?? 0), 0);
}

function moveJson(move: MoveRecord): object {
  return {
    targetEpoch: move.targetEpoch,
    kind: move.kind,
    shardId: move.shardId,
    shards: move.target.shards.map((s) => ({ id: s.id, address: s.address })),
    phase: move.phase,
    active: move.finishedAt === undefined,
    startedAt: move.startedAt.toISOString(),
    updatedAt: move.updatedAt.toISOString(),
    finishedAt: move.finishedAt?.toISOString() ?? null,
    aborted: move.abortedAt !== undefined,
    abortedPhase: move.abortedPhase ?? null,
    figures: move.figures,
  };
}

async function move(
  url: string,
  request: MoveRequest,
  tuning: { pauseMs: number | undefined; batchStreams: number | undefined; databaseUrl: string | undefined },
  tls: TlsSettings | undefined,
  storeCredentials: StoreCredentials | undefined,
  out: Output,
  signal: AbortSignal | undefined,
): Promise<number> {
  const printer = new ProgressPrinter(out);
  const rebalancer = new Rebalancer({
    ringDatabaseUrl: url,
    ...(tls ? { credentials: clientCredentials(tls) } : {}),
    ...(storeCredentials ? { storeCredentials } : {}),
    ...(tuning.pauseMs !== undefined ? { pauseMs: tuning.pauseMs } : {}),
    ...(tuning.batchStreams !== undefined ? { batchStreams: Math.max(1, tuning.batchStreams) } : {}),
    ...(tuning.databaseUrl ? { databaseUrls: { [request.shardId]: tuning.databaseUrl } } : {}),
    onProgress: (p) => printer.update(p),
    ...(signal ? { signal } : {}),
  });
  try {
    const result = await rebalancer.run(request);
    printer.end();
    if (result.outcome === 'already-done') {
      out.line(
        request.kind === 'add'
          ? `${request.shardId} is already on the ring at ${request.address} (epoch ${result.epoch}): nothing to do`
          : `${request.shardId} is not on the ring (epoch ${result.epoch}): nothing to do`,
      );
      return 0;
    }
    const f = result.figures;
    const share = f.streamsSeen > 0 ? ` (${((100 * f.streamsTotal) / f.streamsSeen).toFixed(1)}% of ${formatCount(f.streamsSeen)})` : '';
    const rate = result.durationMs > 0 ? ` (${formatCount((f.streamsTotal / result.durationMs) * 1000)} streams/s)` : '';
    out.line(
      `ring epoch ${result.epoch}: ${request.kind === 'add' ? 'added' : 'removed'} ${request.shardId}; ${formatCount(f.streamsTotal)} streams moved${share}, ` +
        `${formatCount(f.eventsCopied)} events copied, in ${formatDuration(result.durationMs)}${rate}${result.resumed ? ' (resumed)' : ''}`,
    );
    if (request.kind === 'remove') out.line(`${request.shardId} owns nothing now: its process can be stopped`);
    return 0;
  } catch (err) {
    printer.end();
    if (signal?.aborted) {
      out.error(`interrupted in phase ${printer.phase ?? 'start'}; run the same command again to resume the move`);
      return 130;
    }
    if (err instanceof MoveInProgressError || err instanceof RebalanceError) {
      out.error(err.message);
      return 1;
    }
    out.error(`the move failed: ${err instanceof Error ? err.message : String(err)}`);
    out.error('nothing is lost: run the same command again to resume it (`shardwrite ring status` shows where it stands)');
    return 1;
  }
}

async function abort(url: string, out: Output, signal: AbortSignal | undefined): Promise<number> {
  const rebalancer = new Rebalancer({
    ringDatabaseUrl: url,
    onProgress: (p) => p.note && out.line(`${p.kind} ${p.shardId} → epoch ${p.targetEpoch}: ${p.note}`),
    ...(signal ? { signal } : {}),
  });
  try {
    const result = await rebalancer.abort();
    if (result.outcome === 'nothing') {
      out.line(`no move in progress (ring epoch ${result.epoch}): nothing to abort`);
      return 0;
    }
    const f = result.figures;
    out.line(
      `aborted ${describeMove(result.move)} in phase ${result.abortedPhase}: ring epoch ${result.epoch} keeps the old shards; ` +
        `${formatCount(f.copiesRemoved)} copies removed (${formatCount(f.eventsArchived)} events archived), ` +
        `${f.fencesLifted} store${f.fencesLifted === 1 ? '' : 's'} unsealed, in ${formatDuration(result.durationMs)}`,
    );
    if (result.move.kind === 'add') out.line(`${result.move.shardId} owns nothing: its process can be stopped, or added again later`);
    return 0;
  } catch (err) {
    if (signal?.aborted) {
      out.error('interrupted; run `shardwrite ring abort` again to finish abandoning the move');
      return 130;
    }
    if (err instanceof RebalanceError) {
      out.error(err.message);
      return 1;
    }
    out.error(`the abort failed: ${err instanceof Error ? err.message : String(err)}`);
    out.error('run `shardwrite ring abort` again to finish it (`shardwrite ring status` shows where the move stands)');
    return 1;
  }
}

async function rebind(url: string, shardId: string, databaseUrl: string, storeCredentials: StoreCredentials | undefined, out: Output): Promise<number> {
  const rebalancer = new Rebalancer({ ringDatabaseUrl: url, ...(storeCredentials ? { storeCredentials } : {}) });
  try {
    const r = await rebalancer.rebind(shardId, databaseUrl);
    out.line(
      `${shardId} is bound to store ${r.newStoreId} at ${redactDatabaseUrl(r.newUrl)}${r.migrated ? ' (migrated)' : ''}; ` +
        `its store ${r.oldStoreId ?? '(registered before store ids)'} at ${redactDatabaseUrl(r.oldUrl)} is lost: ${r.lostBecause}`,
    );
    out.line(`start ${shardId} with DATABASE_URL set to the new store: it serves its aggregates from there, empty (the lost store's events are not recovered)`);
    return 0;
  } catch (err) {
    if (err instanceof RebalanceError) {
      out.error(err.message);
      return 1;
    }
    out.error(`the rebind failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/**
 * Shows progress: a bar rewritten in place on a terminal (at most ten times a
 * second), otherwise a plain line per phase and at most one a second.
 */
class ProgressPrinter {
  #last = 0;
  #lastPhase: string | undefined;
  #lastNote: string | undefined;
  #drawn = false;
  phase: string | undefined;

  constructor(private readonly out: Output) {}

  update(p: MoveProgress): void {
    const now = performance.now();
    const changed = p.phase !== this.#lastPhase || p.note !== this.#lastNote;
    this.phase = p.phase;
    if (this.out.tty && this.out.overwrite) {
      if (p.phase !== this.#lastPhase && this.#drawn && this.#lastPhase !== undefined) this.out.line('');
      if (!changed && now - this.#last < 100) return;
      this.out.overwrite(progressBar(p));
      this.#drawn = true;
    } else {
      if (!changed && now - this.#last < 1000) return;
      this.out.line(progressLine(p));
    }
    this.#last = now;
    this.#lastPhase = p.phase;
    this.#lastNote = p.note;
  }

  end(): void {
    if (this.#drawn) this.out.line('');
    this.#drawn = false;
  }
}

/** The TLS_* settings `npm start -- --secure` recorded for the rebalancer, if any. */
function rebalancerTlsFromClusterFile(): Record<string, string> {
  const file = resolve(CLUSTER_FILE);
  if (!existsSync(file)) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { tls?: { rebalancer?: Record<string, unknown> } };
  const env = parsed.tls?.rebalancer ?? {};
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function ringUrlFromClusterFile(): string | undefined {
  const file = resolve(CLUSTER_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { ringDatabaseUrl?: unknown };
  return typeof parsed.ringDatabaseUrl === 'string' ? parsed.ringDatabaseUrl : undefined;
}

/** The settings `readStoreCredentials` reads. */
export const STORE_CREDENTIAL_SETTINGS = { SHARD_DATABASE_USER: text(), SHARD_DATABASE_PASSWORD_FILE: text() } as const;

/**
 * SHARD_DATABASE_USER and SHARD_DATABASE_PASSWORD_FILE: the rebalancer's own
 * login (a user IN ROLE shardwrite_rebalancer) to every shard's store, whose
 * URL the ring database keeps without a password. Unset: the registered URL's
 * user, with PGPASSWORD or ~/.pgpass.
 */
export function readStoreCredentials(r: EnvReader<typeof STORE_CREDENTIAL_SETTINGS>): StoreCredentials | undefined {
  const user = r.optionalString('SHARD_DATABASE_USER');
  const file = r.optionalString('SHARD_DATABASE_PASSWORD_FILE');
  let password: string | undefined;
  if (file !== undefined) {
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      r.problem(`SHARD_DATABASE_PASSWORD_FILE cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return user === undefined && password === undefined ? undefined : { user, password };
}

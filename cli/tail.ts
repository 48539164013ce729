/**
 * `shardwrite tail`: prints the events the cluster commits, one line each, as
 * they come — for watching what happens. It follows the router's
 * `SubscriptionService` with the client's `subscribe()`, so it survives a
 * router restart without losing or repeating a line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { subscribe, SubscriptionRefusedError, type ReceivedEvent, type SubscriptionProgress } from '../src/client/index.js';
import { CLUSTER_FILE, type Output } from './ring.js';

/** Where `tail` connects without `--address` and without a `.data/cluster.json`. @default 127.0.0.1:50051 */
export const DEFAULT_ADDRESS = '127.0.0.1:50051';
/** Longest data shown on a terminal line (the rest is cut, `--json` never cuts). @default 160 */
export const DATA_WIDTH = 160;

export const TAIL_USAGE = `  tail [--type T]… [--event-type E]… [--from end|beginning|""|CHECKPOINT] [--address host:port] [--token T] [--ca-file F] [--json]
                        print committed events live, one line each (shard, stream, version, type, data);
                        --from: "end" (default) = from now on, "" or beginning = everything, or a checkpoint
                        token; --json prints one JSON object per event; the address defaults to npm start's router;
                        --token (or SHARDWRITE_TOKEN) is sent as a bearer token when the service checks credentials;
                        --ca-file (or SHARDWRITE_CA_FILE, or npm start --secure's CA) connects with TLS trusting that CA`;

export interface TailArgs {
  readonly aggregateTypes: string[];
  readonly eventTypes: string[];
  readonly from: string;
  readonly address: string | undefined;
  readonly token: string | undefined;
  readonly caFile: string | undefined;
  readonly json: boolean;
}

/** Parses `tail`'s arguments; a string is the usage problem. */
export function parseTailArgs(args: readonly string[]): TailArgs | string {
  const aggregateTypes: string[] = [];
  const eventTypes: string[] = [];
  let from = 'end';
  let address: string | undefined;
  let token: string | undefined;
  let caFile: string | undefined;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? args[++i];
    switch (flag) {
      case '--json':
        if (inline !== undefined) return '--json takes no value';
        json = true;
        break;
      case '--type':
      case '--event-type':
      case '--from':
      case '--token':
      case '--ca-file':
      case '--address': {
        const v = value();
        // `--from ""` is a real value (the beginning); every other flag needs text.
        if (v === undefined || (v === '' && flag !== '--from') || (v.startsWith('--') && inline === undefined)) return `${flag} needs a value`;
        if (flag === '--type') aggregateTypes.push(...v.split(',').filter(Boolean));
        else if (flag === '--event-type') eventTypes.push(...v.split(',').filter(Boolean));
        else if (flag === '--from') from = v === 'beginning' ? '' : v;
        else if (flag === '--token') token = v;
        else if (flag === '--ca-file') caFile = v;
        else {
          if (!/^[^\s:]+:\d{1,5}$/.test(v)) return `--address must be host:port (got "${v}")`;
          address = v;
        }
        break;
      }
      default:
        return a.startsWith('-') ? `unknown option ${a}` : `unexpected argument "${a}"`;
    }
  }
  return { aggregateTypes, eventTypes, from, address, token, caFile, json };
}

/** `shard-1  order-header-o1  v3  OrderShipped  {"carrier":"ups",…}`; data cut at `width` characters. */
export function formatEventLine(e: ReceivedEvent, width = DATA_WIDTH): string {
  // Re-serialized: the store's JSON text has spaces after every separator.
  const compact = e.data === undefined ? '' : JSON.stringify(e.data);
  const data = compact.length > width ? `${compact.slice(0, width - 1)}…` : compact;
  return `${e.shardId}  ${e.streamId}  v${e.version}  ${e.type}  ${data}`;
}

/** One JSON object per event (data as a value, not a string). */
export function formatEventJson(e: ReceivedEvent): string {
  return JSON.stringify({
    eventId: e.eventId,
    shardId: e.shardId,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    streamId: e.streamId,
    version: e.version,
    type: e.type,
    schemaVersion: e.schemaVersion,
    recordedAt: e.recordedAt?.toISOString() ?? null,
    data: e.data ?? null,
    metadata: e.metadata,
    checkpoint: e.checkpoint,
  });
}

/** What a notice (on stderr) says, or undefined for the ones not worth a line. */
export function describeProgress(p: SubscriptionProgress): string | undefined {
  switch (p.kind) {
    case 'caught-up':
      return '— caught up: following new events live (Ctrl-C stops) —';
    case 'fell-behind':
      return '— fell behind the live tail: reading from the store until caught up —';
    case 'reconnecting':
      return `— connection lost (${grpc.status[p.status.code] ?? p.status.code}: ${p.status.message}); reconnecting in ${p.delayMs} ms —`;
    case 'checkpoint':
      return undefined;
  }
}

/** Runs `shardwrite tail <args>` until `signal` aborts; resolves with the exit code. `defaultToken` applies without `--token`. */
export async function tailCommand(args: readonly string[], out: Output, signal: AbortSignal, defaultToken?: string, defaultCaFile?: string): Promise<number> {
  const parsed = parseTailArgs(args);
  if (typeof parsed === 'string') {
    out.error(parsed);
    out.error(`usage:\n${TAIL_USAGE}`);
    return 2;
  }
  const address = parsed.address ?? fromClusterFile()?.address ?? DEFAULT_ADDRESS;
  const token = parsed.token ?? defaultToken;
  const metadata = token ? { authorization: `Bearer ${token}` } : undefined;
  const caFile = parsed.caFile ?? defaultCaFile ?? (parsed.address === undefined ? fromClusterFile()?.caFile : undefined);
  const sub = subscribe(address, {
    ...(caFile ? { tls: { caFile } } : {}),
    from: parsed.from,
    aggregateTypes: parsed.aggregateTypes,
    eventTypes: parsed.eventTypes,
    signal,
    ...(metadata ? { metadata } : {}),
    onProgress: (p) => {
      const note = describeProgress(p);
      if (note) out.error(note);
    },
  });
  const filters = [...parsed.aggregateTypes.map((t) => `type ${t}`), ...parsed.eventTypes.map((t) => `event ${t}`)];
  out.error(`following ${address} from ${parsed.from === '' ? 'the beginning' : parsed.from === 'end' ? 'now on' : 'the checkpoint given'}${filters.length ? ` (${filters.join(', ')})` : ''}`);
  try {
    for await (const e of sub) out.line(parsed.json ? formatEventJson(e) : formatEventLine(e, out.tty ? DATA_WIDTH : Number.POSITIVE_INFINITY));
    return 0;
  } catch (err) {
    if (err instanceof SubscriptionRefusedError) {
      out.error(`the service refused the subscription: ${err.message}`);
      return err.code === grpc.status.INVALID_ARGUMENT ? 2 : 1;
    }
    throw err;
  } finally {
    // Where to pick up again, for a reader that wants no gap.
    if (sub.checkpoint !== '' && sub.checkpoint !== 'end') out.error(`stopped; resume with --from ${sub.checkpoint}`);
  }
}

/** The router `npm start` runs, and the CA file to trust when it runs with `--secure`. */
export function fromClusterFile(): { address: string; caFile: string | undefined } | undefined {
  const file = resolve(CLUSTER_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { router?: { address?: unknown }; tls?: { caFile?: unknown } };
    if (typeof parsed.router?.address !== 'string') return undefined;
    return { address: parsed.router.address, caFile: typeof parsed.tls?.caFile === 'string' ? parsed.tls.caFile : undefined };
  } catch {
    return undefined;
  }
}

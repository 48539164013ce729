/**
 * The decide stage of a round: the commands queued for one stream, decided in
 * order against the evolving state, and the one append entry they make.
 * Pure apart from the clock the caller passes in.
 */
import type { AnyDecider } from '../domain/decider.js';
import type { RoutedCommand } from '../domain/module.js';
import { AggregateNotFoundError, CommandIdReusedError, VersionConflictError } from '../errors.js';
import { mayAccessTenant, type Identity } from '../auth/identity.js';
import type { Span, SpanContext } from '../observability/tracing.js';
import type { AppendEntry, EventMetadata, NewEvent } from '../store/types.js';
import type { CommandOutcome } from './call.js';
import type { CommandVersions } from './aggregate-cache.js';

/** A command in its stream's mailbox, until it is answered. */
export interface Pending {
  readonly routed: RoutedCommand;
  readonly identity: Identity;
  /** Digest of the request, recorded with its command id (set when it has one). */
  readonly digest: string | undefined;
  readonly streamId: string;
  readonly metadata: EventMetadata;
  readonly deadline: number | undefined;
  readonly enqueuedAt: number;
  /** Its span, when traced (`CallContext.span`), and when it entered the mailbox (`performance.now()`). */
  readonly span: Span | undefined;
  readonly spanQueuedAt: number;
  /** Answers the command; only the first answer counts. */
  readonly resolve: (outcome: CommandOutcome) => void;
  readonly reject: (err: unknown) => void;
}

/** How one command fared in one decide round. */
export type Decision =
  { kind: 'append'; p: Pending; events: NewEvent[]; firstVersion: number } | { kind: 'duplicate'; p: Pending; versions: CommandVersions } | { kind: 'failed'; p: Pending; error: unknown };

export type AppendDecision = Extract<Decision, { kind: 'append' }>;

/** The decisions of one round, one per command in order, and what they leave behind. */
export interface DecidedRound {
  readonly state: unknown;
  readonly decisions: Decision[];
  readonly toAppend: AppendDecision[];
  /** The stream's tenant: the one read, else the creating command's. */
  readonly tenant: string | undefined;
}

/** Where a round starts: the stream as loaded (or assumed new). */
export interface RoundStart {
  readonly state: unknown;
  readonly version: number;
  /** Command ids already recorded on the stream, among those of the round. */
  readonly known: ReadonlyMap<string, CommandVersions>;
  readonly tenant: string | undefined;
}

/** Decides each command in order against the evolving state, at ISO time `at`. */
export function decideRound(decider: AnyDecider, start: RoundStart, live: readonly Pending[], at: string): DecidedRound {
  let state = start.state;
  // A new stream belongs to the tenant of the command that creates it.
  let tenant = start.tenant;
  let version = start.version;
  const decisions: Decision[] = [];
  const toAppend: AppendDecision[] = [];
  const inThisRound = new Map<string, CommandVersions>();
  for (const p of live) {
    const { routed } = p;
    // Another tenant's aggregate is answered as one that does not exist (before anything else,
    // a duplicate's result included), so its id's existence is not revealed by the answer's kind.
    if (tenant !== undefined && !mayAccessTenant(p.identity, tenant)) {
      decisions.push({ kind: 'failed', p, error: new AggregateNotFoundError(`${routed.aggregateType} ${routed.aggregateId} does not exist`) });
      continue;
    }
    const id = routed.commandId;
    const seen = id === undefined ? undefined : (start.known.get(id) ?? inThisRound.get(id));
    if (seen) {
      if (seen.requestDigest !== undefined && p.digest !== undefined && seen.requestDigest !== p.digest) {
        decisions.push({ kind: 'failed', p, error: new CommandIdReusedError(id!) });
      } else {
        decisions.push({ kind: 'duplicate', p, versions: seen });
      }
      continue;
    }
    if (routed.expectedVersion !== undefined && routed.expectedVersion !== version) {
      decisions.push({ kind: 'failed', p, error: new VersionConflictError(p.streamId, version, routed.expectedVersion) });
      continue;
    }
    try {
      const events = decider.decide({ ...routed.command, context: { at } }, state) as { type: string; data: unknown }[];
      if (events.length === 0) throw new Error(`${decider.aggregateType} decided no events for ${routed.command.type}`);
      for (const e of events) state = decider.evolve(state, e);
      // Events record the stream's tenant (a `*` caller may act on another tenant's stream).
      const streamTenant = tenant ?? p.identity.tenant;
      const metadata = p.metadata.tenant === streamTenant ? p.metadata : { ...p.metadata, tenant: streamTenant };
      const newEvents = events.map((e) => ({
        type: e.type,
        schemaVersion: decider.eventSchemaVersions[e.type] ?? 1,
        data: e.data,
        metadata,
      }));
      const d = { kind: 'append' as const, p, events: newEvents, firstVersion: version + 1 };
      version += events.length;
      if (id !== undefined) inThisRound.set(id, { firstVersion: d.firstVersion, lastVersion: version, ...(p.digest ? { requestDigest: p.digest } : {}) });
      decisions.push(d);
      toAppend.push(d);
      tenant ??= p.identity.tenant;
    } catch (error) {
      decisions.push({ kind: 'failed', p, error });
    }
  }
  return { state, decisions, toAppend, tenant };
}

/**
 * The one append entry of a round: its commands' events (`events`, when
 * sealed, else as decided) right after `baseVersion` (the version the round
 * loaded), linked to the commands'
 * recording spans when `traced`.
 */
export function entryFor(
  streamId: string,
  baseVersion: number,
  toAppend: readonly AppendDecision[],
  tenant: string | undefined,
  events: readonly NewEvent[] | undefined,
  traced: boolean,
): AppendEntry {
  const first = toAppend[0]!.p.routed;
  let links: SpanContext[] | undefined;
  if (traced) {
    for (const d of toAppend) if (d.p.span?.isRecording()) (links ??= []).push(d.p.span.spanContext());
  }
  // One shape whether traced or not (a spread of an optional member made this the costliest line of a traced round).
  return {
    trace: links ? { parent: links[0]!, links } : undefined,
    streamId,
    aggregateType: first.aggregateType,
    aggregateId: first.aggregateId,
    tenant: tenant ?? '',
    baseVersion,
    events: events ?? toAppend.flatMap((d) => d.events),
    commands: toAppend.map((d) => ({ commandId: d.p.routed.commandId, requestDigest: d.p.digest, eventCount: d.events.length })),
  };
}

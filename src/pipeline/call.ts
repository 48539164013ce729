/**
 * What a command brings with it from the transport (its call context) and what
 * it gets back (its outcome), with the checks made on them before any work.
 */
import { createHash } from 'node:crypto';
import type { RoutedCommand } from '../domain/module.js';
import { ValidationError } from '../errors.js';
import type { Identity } from '../auth/identity.js';
import { formatTraceparent, type Span } from '../observability/tracing.js';
import type { EventMetadata, StoredEvent } from '../store/types.js';

/** What the caller's transport tells the pipeline about a call. */
export interface CallContext {
  /** Absolute deadline (ms since epoch); the command is not started after it. */
  readonly deadline?: number;
  /** The caller, as its server's interceptor (or the router, on the link) verified it; none = refused. */
  readonly identity?: Identity;
  readonly correlationId?: string;
  readonly causationId?: string;
  /**
   * The command's span at this shard, when traced: the pipeline adds its
   * stages to it and records its context in the events' `traceparent`.
   */
  readonly span?: Span;
  /** The caller's `traceparent`, well-formed (`validTraceparent`), recorded in the events when the command has no span. */
  readonly traceparent?: string;
  /**
   * Whom the command counts against in the share of `maxInFlight` one caller
   * may hold (`callerKey`: its principal, else its connection; on a router's
   * link, the caller the router names). Unset: counted in the total only.
   */
  readonly caller?: string;
}

/** The result of one command, as sent back in `CommandResult`. */
export interface CommandOutcome {
  readonly streamId: string;
  readonly version: number;
  readonly events: readonly StoredEvent[];
  readonly duplicate: boolean;
}

/**
 * A digest of what a command asks for (its type and data; not its id or
 * expected version, and not its stream, which command ids are scoped to): a
 * retry has the same one, another request under the same command id a
 * different one.
 */
export function requestDigest(routed: RoutedCommand): string {
  return createHash('sha256').update(JSON.stringify(routed.command)).digest('base64url').slice(0, 32);
}

/** Longest `x-correlation-id` / `x-causation-id` accepted. @default 128 */
export const MAX_TRACE_ID_LENGTH = 128;

/**
 * Correlation and causation ids are recorded with every event: bounded and
 * printable ASCII, like any other input.
 *
 * @throws ValidationError (nothing is written).
 */
export function checkTraceIds(ctx: Pick<CallContext, 'correlationId' | 'causationId'>): void {
  const violations: { field: string; description: string }[] = [];
  for (const [field, value] of [
    ['x-correlation-id', ctx.correlationId],
    ['x-causation-id', ctx.causationId],
  ] as const) {
    if (value === undefined) continue;
    if (value.length === 0 || value.length > MAX_TRACE_ID_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
      violations.push({ field, description: `must be 1..${MAX_TRACE_ID_LENGTH} printable ASCII characters without spaces` });
    }
  }
  if (violations.length > 0) throw new ValidationError(violations);
}

/**
 * What every event of the command records of its cause (I14): who (principal,
 * tenant), which command and request, its correlation and causation ids, and
 * the trace it was written in, for its consumers to continue.
 */
export function auditMetadata(routed: RoutedCommand, identity: Identity, ctx: CallContext, digest: string | undefined): EventMetadata {
  const metadata: Record<string, string> = { principal: identity.principal, tenant: identity.tenant };
  if (routed.commandId) metadata.command_id = routed.commandId;
  if (digest) metadata.request_digest = digest;
  metadata.correlation_id = ctx.correlationId ?? routed.commandId ?? '';
  if (metadata.correlation_id === '') delete metadata.correlation_id;
  if (ctx.causationId) metadata.causation_id = ctx.causationId;
  const traceparent = ctx.span ? formatTraceparent(ctx.span.spanContext()) : ctx.traceparent;
  if (traceparent) metadata.traceparent = traceparent;
  return metadata;
}

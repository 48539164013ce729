/**
 * The error hierarchy of shardwrite. Every failure a caller can see is one of
 * these classes; `src/grpc/status.ts` is the single place that maps them to
 * gRPC status codes and `google.rpc.ErrorInfo` reasons. Anything else that
 * escapes is treated as INTERNAL, logged with its cause and never leaked.
 */

/** Base class: `reason` is the ErrorInfo reason sent on the wire. */
export abstract class ShardwriteError extends Error {
  abstract readonly reason: string;
  /** Extra key/value pairs for ErrorInfo.metadata. */
  metadata(): Record<string, string> {
    return {};
  }
}

export interface FieldViolation {
  field: string;
  description: string;
}

/** A command is malformed or breaks a field rule. Nothing is written. */
export class ValidationError extends ShardwriteError {
  readonly reason = 'VALIDATION';
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join('; ') || 'invalid command');
    this.name = 'ValidationError';
  }
}

/** The caller did not present usable credentials. */
export class UnauthenticatedError extends ShardwriteError {
  readonly reason = 'UNAUTHENTICATED';
  constructor(message = 'missing or invalid credentials') {
    super(message);
    this.name = 'UnauthenticatedError';
  }
}

/** The caller may not do this to this aggregate. */
export class PermissionDeniedError extends ShardwriteError {
  readonly reason = 'PERMISSION_DENIED';
  constructor(message = 'not allowed') {
    super(message);
    this.name = 'PermissionDeniedError';
  }
}

/** The command needs an existing aggregate and there is none. */
export class AggregateNotFoundError extends ShardwriteError {
  readonly reason = 'AGGREGATE_NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'AggregateNotFoundError';
  }
}

/**
 * A command id was used before on this stream for a different request: the
 * earlier result is not the answer to this one, so the command is refused.
 */
export class CommandIdReusedError extends ShardwriteError {
  readonly reason = 'COMMAND_ID_REUSED';
  constructor(readonly commandId: string) {
    super(`command_id ${commandId} was already used for a different request on this aggregate`);
    this.name = 'CommandIdReusedError';
  }

  override metadata(): Record<string, string> {
    return { command_id: this.commandId };
  }
}

/** A business rule refuses the command (thrown by deciders). */
export class BusinessRuleError extends ShardwriteError {
  readonly reason = 'BUSINESS_RULE';
  constructor(message: string) {
    super(message);
    this.name = 'BusinessRuleError';
  }
}

/**
 * The stream is not at the version the command needed: a client's
 * `expected_version` mismatch, or conflict retries exhausted.
 */
export class VersionConflictError extends ShardwriteError {
  readonly reason = 'VERSION_CONFLICT';
  constructor(
    readonly streamId: string,
    readonly currentVersion: number,
    readonly expectedVersion?: number,
    message?: string,
  ) {
    super(
      message ??
        (expectedVersion === undefined ? `stream ${streamId} kept changing (at version ${currentVersion})` : `stream ${streamId} is at version ${currentVersion}, expected ${expectedVersion}`),
    );
    this.name = 'VersionConflictError';
  }
  override metadata(): Record<string, string> {
    const m: Record<string, string> = { stream_id: this.streamId, current_version: String(this.currentVersion) };
    if (this.expectedVersion !== undefined) m.expected_version = String(this.expectedVersion);
    return m;
  }
}

/** The ErrorInfo reason of {@link WrongShardError}, as a router recognises it (`wrongShardEpoch` in src/grpc/status.ts). */
export const WRONG_SHARD = 'WRONG_SHARD';

/** This shard does not own the aggregate at the epoch it knows. */
export class WrongShardError extends ShardwriteError {
  readonly reason = WRONG_SHARD;
  constructor(
    readonly epoch: number,
    message = `this shard does not own the aggregate at epoch ${epoch}`,
  ) {
    super(message);
    this.name = 'WrongShardError';
  }
  override metadata(): Record<string, string> {
    return { epoch: String(this.epoch) };
  }
}

/** The ErrorInfo reason of {@link StreamMovingError}, as a ring-aware client recognises it (`streamMovingEpoch` in src/grpc/status.ts). */
export const STREAM_MOVING = 'STREAM_MOVING';

/**
 * The stream is being moved to another shard by a rebalance: its old owner has
 * sealed it and will not append to it again, and the ring that names its new
 * owner (`targetEpoch`) is not published yet, or this shard has not heard of
 * it. Nothing was written; the caller should retry after `retryAfterMs`, and
 * the retry reaches the new owner once routers hold the new epoch.
 *
 * `planUnknown` marks the rarer case where the store refused the append
 * because this shard did not know the move's plan yet (a missed
 * notification): the stream may not be moving at all, and the pipeline
 * re-reads the ring and tries again instead of answering.
 */
export class StreamMovingError extends ShardwriteError {
  readonly reason = STREAM_MOVING;
  constructor(
    readonly targetEpoch: number,
    readonly retryAfterMs: number,
    message = `the stream is moving to another shard at ring epoch ${targetEpoch}; retry shortly`,
    readonly planUnknown = false,
  ) {
    super(message);
    this.name = 'StreamMovingError';
  }
  override metadata(): Record<string, string> {
    return { epoch: String(this.targetEpoch), retry_after_ms: String(this.retryAfterMs) };
  }
}

/** The shard's database is unreachable, timing out, or its breaker is open. */
export class StoreUnavailableError extends ShardwriteError {
  readonly reason = 'STORE_UNAVAILABLE';
  constructor(message = 'the event store is unavailable', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The ErrorInfo reason of {@link ShardUnavailableError}. */
export const SHARD_UNAVAILABLE = 'SHARD_UNAVAILABLE';

/**
 * A shard is down or its breaker (in the router) is open; from a shard itself,
 * for a command it did not run because it is shutting down.
 */
export class ShardUnavailableError extends ShardwriteError {
  readonly reason = SHARD_UNAVAILABLE;
  constructor(message = 'the shard is unavailable') {
    super(message);
    this.name = 'ShardUnavailableError';
  }
}

/** A bounded queue is full; the caller should retry after `retryAfterMs`. */
export class OverloadedError extends ShardwriteError {
  readonly reason = 'OVERLOADED';
  constructor(
    readonly retryAfterMs: number,
    message = 'the shard is overloaded, retry later',
  ) {
    super(message);
    this.name = 'OverloadedError';
  }
  override metadata(): Record<string, string> {
    return { retry_after_ms: String(this.retryAfterMs) };
  }
}

/** The caller's deadline passed before the command could run or finish. */
export class DeadlineExceededError extends ShardwriteError {
  readonly reason = 'DEADLINE_EXCEEDED';
  constructor(message = 'deadline exceeded') {
    super(message);
    this.name = 'DeadlineExceededError';
  }
}

/**
 * A member joined a consumer group with filters other than those the group
 * was created with (the first join fixes them).
 */
export class ConsumerGroupMismatchError extends ShardwriteError {
  readonly reason = 'GROUP_MISMATCH';
  constructor(
    readonly group: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConsumerGroupMismatchError';
  }
  override metadata(): Record<string, string> {
    return { group: this.group };
  }
}

/**
 * Raised by the event store when an append lost the optimistic-concurrency
 * race (the (stream, version) key or the stream's version row refused it).
 * The pipeline retries it; it reaches a client only as VersionConflictError.
 */
export class ConcurrencyError extends Error {
  constructor(
    readonly streamId: string,
    readonly currentVersion: number | undefined,
  ) {
    super(`concurrent append on ${streamId}`);
    this.name = 'ConcurrencyError';
  }
}

/** Raised by the event store when the command id was already recorded on the stream. */
export class DuplicateCommandError extends Error {
  constructor(
    readonly streamId: string,
    readonly commandId: string,
  ) {
    super(`command ${commandId} already applied to ${streamId}`);
    this.name = 'DuplicateCommandError';
  }
}

/** Type guard used by breakers: errors that say nothing about the health of a dependency. */
export function isExpectedOutcome(err: unknown): boolean {
  return (
    (err instanceof ShardwriteError && !(err instanceof StoreUnavailableError) && !(err instanceof ShardUnavailableError)) || err instanceof ConcurrencyError || err instanceof DuplicateCommandError
  );
}

/** `err` as an Error (anything thrown that is not one is wrapped), for a promise's rejection. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The one error boundary for gRPC: maps the error hierarchy of
 * `src/errors.ts` to status codes and a `google.rpc.Status` carrying a
 * `google.rpc.ErrorInfo` (and `RetryInfo` / `BadRequest` where they help),
 * serialized into the `grpc-status-details-bin` trailer so any gRPC client
 * can read it. Handlers never build statuses themselves.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { resolve } from 'node:path';
import { PROTO_DIR } from './proto.js';
import {
  AggregateNotFoundError,
  BusinessRuleError,
  CommandIdReusedError,
  ConsumerGroupMismatchError,
  DeadlineExceededError,
  OverloadedError,
  PermissionDeniedError,
  ShardUnavailableError,
  ShardwriteError,
  StoreUnavailableError,
  StreamMovingError,
  UnauthenticatedError,
  ValidationError,
  VersionConflictError,
  WrongShardError,
  SHARD_UNAVAILABLE,
  STREAM_MOVING,
  WRONG_SHARD,
} from '../errors.js';

/** ErrorInfo.domain of every error shardwrite raises. */
export const ERROR_DOMAIN = 'shardwrite.dev';
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

const root = protobuf.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'].map((f) => resolve(PROTO_DIR, f)));
const StatusType = root.lookupType('google.rpc.Status');
const ErrorInfoType = root.lookupType('google.rpc.ErrorInfo');
const RetryInfoType = root.lookupType('google.rpc.RetryInfo');
const BadRequestType = root.lookupType('google.rpc.BadRequest');
const TYPE_URL = 'type.googleapis.com/';

/** A `google.rpc.Status` as plain data, before or after serialization. */
export interface RpcStatus {
  code: grpc.status;
  message: string;
  /** ErrorInfo.reason, when the error has one. */
  reason?: string;
  metadata?: Record<string, string>;
  retryAfterMs?: number;
  violations?: { field: string; description: string }[];
}

const INTERNAL_MESSAGE = 'internal error';

/**
 * Classifies any thrown value. Unknown errors become INTERNAL with a generic
 * message: the caller must log the original (see `logUnexpected`).
 */
export function toRpcStatus(err: unknown): RpcStatus {
  if (!(err instanceof ShardwriteError)) return { code: grpc.status.INTERNAL, message: INTERNAL_MESSAGE };
  const base = { message: err.message, reason: err.reason, metadata: err.metadata() };
  if (err instanceof ValidationError) return { ...base, code: grpc.status.INVALID_ARGUMENT, violations: err.violations };
  if (err instanceof UnauthenticatedError) return { code: grpc.status.UNAUTHENTICATED, message: err.message };
  if (err instanceof PermissionDeniedError) return { code: grpc.status.PERMISSION_DENIED, message: err.message };
  if (err instanceof AggregateNotFoundError) return { ...base, code: grpc.status.NOT_FOUND };
  if (err instanceof BusinessRuleError || err instanceof WrongShardError || err instanceof ConsumerGroupMismatchError || err instanceof CommandIdReusedError)
    return { ...base, code: grpc.status.FAILED_PRECONDITION };
  if (err instanceof VersionConflictError) return { ...base, code: grpc.status.ABORTED };
  if (err instanceof StoreUnavailableError || err instanceof ShardUnavailableError) return { ...base, code: grpc.status.UNAVAILABLE };
  // Retryable: nothing was written, and the retry finds the stream at its new owner.
  if (err instanceof StreamMovingError) return { ...base, code: grpc.status.UNAVAILABLE, retryAfterMs: err.retryAfterMs };
  if (err instanceof OverloadedError) return { ...base, code: grpc.status.RESOURCE_EXHAUSTED, retryAfterMs: err.retryAfterMs };
  if (err instanceof DeadlineExceededError) return { code: grpc.status.DEADLINE_EXCEEDED, message: err.message };
  return { code: grpc.status.INTERNAL, message: INTERNAL_MESSAGE };
}

/** True when `toRpcStatus(err)` would hide the error behind INTERNAL: log it. */
export function isUnexpected(err: unknown): boolean {
  return toRpcStatus(err).code === grpc.status.INTERNAL;
}

/** The `google.rpc.Status` message as plain data (a streamed outcome's `error`). */
export interface StatusMessage {
  code: number;
  message: string;
  details: { type_url: string; value: Buffer }[];
}

export function toStatusMessage(status: RpcStatus): StatusMessage {
  const details: StatusMessage['details'] = [];
  if (status.reason) {
    details.push(pack(ErrorInfoType, { reason: status.reason, domain: ERROR_DOMAIN, metadata: status.metadata ?? {} }));
  }
  if (status.retryAfterMs !== undefined) {
    const ms = status.retryAfterMs;
    details.push(pack(RetryInfoType, { retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } }));
  }
  if (status.violations?.length) {
    details.push(pack(BadRequestType, { fieldViolations: status.violations }));
  }
  return { code: status.code, message: status.message, details };
}

/** The serialized `google.rpc.Status`, as sent in `grpc-status-details-bin`. */
export function encodeStatus(status: RpcStatus): Uint8Array {
  return StatusType.encode(StatusType.fromObject(toStatusMessage(status))).finish();
}

/**
 * The epoch a WRONG_SHARD status reports (0 when it names none, or not a
 * safe integer); undefined for any other status: a router retries once at
 * the owner of that epoch.
 */
export function wrongShardEpoch(status: RpcStatus): number | undefined {
  if (status.reason !== WRONG_SHARD) return undefined;
  const epoch = Number(status.metadata?.epoch ?? 0);
  return Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0;
}

/**
 * The ring epoch a STREAM_MOVING status names (the ring the stream moves to;
 * 0 when it names none, or not a safe integer); undefined for any other
 * status: a ring-aware client resends once it holds that epoch.
 */
export function streamMovingEpoch(status: RpcStatus): number | undefined {
  if (status.code !== grpc.status.UNAVAILABLE || status.reason !== STREAM_MOVING) return undefined;
  const epoch = Number(status.metadata?.epoch ?? 0);
  return Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0;
}

/** Whether `status` is SHARD_UNAVAILABLE (from a shard itself: shutting down, the command not run). */
export function isShardUnavailable(status: RpcStatus): boolean {
  return status.code === grpc.status.UNAVAILABLE && status.reason === SHARD_UNAVAILABLE;
}

/** Parses `grpc-status-details-bin` (used by clients, the router and tests). */
export function decodeStatus(bytes: Uint8Array): RpcStatus {
  return fromStatusMessage(StatusType.toObject(StatusType.decode(bytes), { longs: Number, defaults: true }) as StatusMessage);
}

/** Reads a `google.rpc.Status` message (e.g. a streamed outcome's `error`) into an RpcStatus. */
export function fromStatusMessage(msg: { code: number; message: string; details: { type_url: string; value: Uint8Array }[] }): RpcStatus {
  const out: RpcStatus = { code: msg.code, message: msg.message };
  for (const any of msg.details) {
    const url = any.type_url;
    if (url === TYPE_URL + 'google.rpc.ErrorInfo') {
      const info = ErrorInfoType.toObject(ErrorInfoType.decode(any.value), { defaults: true }) as {
        reason: string;
        metadata: Record<string, string>;
      };
      out.reason = info.reason;
      out.metadata = info.metadata;
    } else if (url === TYPE_URL + 'google.rpc.RetryInfo') {
      const r = RetryInfoType.toObject(RetryInfoType.decode(any.value), { longs: Number, defaults: true }) as {
        retryDelay?: { seconds: number; nanos: number };
      };
      if (r.retryDelay) out.retryAfterMs = r.retryDelay.seconds * 1000 + Math.round(r.retryDelay.nanos / 1e6);
    }
  }
  return out;
}

/** Builds the error a grpc-js handler passes to its callback or `emit('error')`. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> & { code: grpc.status } {
  const status = toRpcStatus(err);
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatus(status)));
  return { code: status.code, details: status.message, metadata };
}

/** Reads the rich status off an error a grpc-js client received. */
export function statusOf(err: grpc.ServiceError): RpcStatus {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw instanceof Buffer) return decodeStatus(raw);
  return { code: err.code, message: err.details };
}

function pack(type: protobuf.Type, value: object): { type_url: string; value: Buffer } {
  const bytes = type.encode(type.fromObject(value)).finish();
  return { type_url: TYPE_URL + type.fullName.slice(1), value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/**
 * What subscribers and consumer groups receive: `SubscribedEvent` from the
 * wire, with its version as a checked number, its JSON data parsed and its
 * timestamp as a `Date`.
 */
import * as grpc from '@grpc/grpc-js';
import type { SubscribedEvent__Output } from '../generated/shardwrite/v1/SubscribedEvent.js';

/** One committed event, as a subscription delivers it. */
export interface ReceivedEvent {
  /** Globally unique and stable, also after the stream moves. */
  readonly eventId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly streamId: string;
  /** The stream version, 1..n. */
  readonly version: number;
  readonly type: string;
  readonly schemaVersion: number;
  /** The event's data, parsed from JSON (upcast to the current schema by the service). */
  readonly data: unknown;
  /** The same data as the JSON text the service sent. */
  readonly rawData: string;
  readonly recordedAt: Date | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** Resume right after this event (an opaque token). */
  readonly checkpoint: string;
  /** The shard that committed it. */
  readonly shardId: string;
}

/**
 * Converts a wire event.
 *
 * @throws RangeError when the version is beyond 2^53 (never silently rounded).
 */
export function toReceivedEvent(e: SubscribedEvent__Output): ReceivedEvent {
  const version = Number(e.version);
  if (!Number.isSafeInteger(version)) throw new RangeError(`event ${e.eventId}: version ${e.version} is not a safe integer`);
  return {
    eventId: e.eventId,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    streamId: e.streamId,
    version,
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: parseData(e.data),
    rawData: e.data,
    recordedAt: e.recordedAt ? new Date(Number(e.recordedAt.seconds) * 1000 + Math.floor(e.recordedAt.nanos / 1e6)) : undefined,
    metadata: e.metadata ?? {},
    checkpoint: e.checkpoint,
    shardId: e.shardId,
  };
}

// The service always sends JSON; an empty string (no data) reads as undefined rather than failing the subscription.
function parseData(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Whether a subscription or group session that ended with `code` is worth
 * opening again: the connection or the server went away, or the server was
 * busy. A refusal of the request itself (bad filter or token, credentials,
 * an unknown method) would fail the same way again.
 */
export function isRetryable(code: grpc.status): boolean {
  switch (code) {
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.UNAUTHENTICATED:
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.UNIMPLEMENTED:
    case grpc.status.NOT_FOUND:
    case grpc.status.OUT_OF_RANGE:
    case grpc.status.ALREADY_EXISTS:
      return false;
    default:
      return true;
  }
}

/** What a command sent by the client can fail with (besides a closed client). */
import * as grpc from '@grpc/grpc-js';
import type { RpcStatus } from '../grpc/status.js';

/** A call the service answered with a status; `code` and `reason` (its ErrorInfo reason) read it. */
export class StatusError extends Error {
  constructor(readonly status: RpcStatus) {
    super(`${grpc.status[status.code] ?? status.code}: ${status.message}`);
  }
  get code(): grpc.status {
    return this.status.code;
  }
  get reason(): string | undefined {
    return this.status.reason;
  }
}

/** The service refused the command; `status` has the gRPC code and ErrorInfo reason. */
export class CommandFailedError extends StatusError {
  override name = 'CommandFailedError';
}

/** A client holds at most `max` commands that have no outcome yet (RESOURCE_EXHAUSTED / OVERLOADED, retryable). */
export function tooManyPending(max: number): CommandFailedError {
  return new CommandFailedError({ code: grpc.status.RESOURCE_EXHAUSTED, message: `more than ${max} commands pending in this client`, reason: 'OVERLOADED' });
}

/** The stream broke while the command was in flight: its outcome is unknown. */
export class ConnectionLostError extends Error {
  constructor(readonly cause: RpcStatus) {
    super(
      `the command stream closed before the outcome arrived (${grpc.status[cause.code] ?? cause.code}: ${cause.message}); ` +
        'the command may or may not have been applied — retry it with the same commandId',
    );
    this.name = 'ConnectionLostError';
  }

  /** Why the stream closed (UNAUTHENTICATED when its credentials were refused, UNAVAILABLE when the service went away…). */
  get code(): grpc.status {
    return this.cause.code;
  }
}
